"""The change log's promise: per blog, seq starts at 1 with no gaps and no repeats."""

import asyncio

import httpx

from app.config import Settings
from tests.support.clients import asgi_client
from tests.support.factories import ADMIN, create_blog, publish_entry, read_log
from tests.support.servers import running_app


async def test_concurrent_writers_on_two_servers_get_gap_free_seqs(settings: Settings) -> None:
    # Two apps, each with its own engine and pool: two servers on the same database.
    async with (
        running_app(settings) as first,
        running_app(settings) as second,
        asgi_client(first) as one,
        asgi_client(second) as two,
    ):
        for slug in ("north", "south"):
            await create_blog(one, slug, slug)

        async def write(client: httpx.AsyncClient, slug: str, number: int) -> None:
            entry_id = (await publish_entry(client, slug, body=f"<p>{number}</p>"))["id"]
            response = await client.patch(
                f"/api/v1/blogs/{slug}/entries/{entry_id}",
                json={"key_event": True},
                headers=ADMIN,
            )
            assert response.status_code == 200, response.text

        await asyncio.gather(
            *(
                write(client, slug, number)
                for number in range(15)
                for client in (one, two)
                for slug in ("north", "south")
            )
        )
        for slug in ("north", "south"):
            events = await read_log(one, slug)
            assert [e["seq"] for e in events] == list(range(1, 61))
            blog = (await two.get(f"/api/v1/blogs/{slug}")).json()
            assert blog["head_seq"] == 60
            # Every entry's created event comes before its edit.
            first_seen: dict[int, str] = {}
            for event in events:
                first_seen.setdefault(event["entry"]["id"], event["type"])
            assert set(first_seen.values()) == {"entry.created"}
