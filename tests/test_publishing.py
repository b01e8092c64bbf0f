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


async def test_plain_pinned_and_keyed_publishes_racing_on_one_blog_all_go_out(
    settings: Settings,
) -> None:
    # A plain entry is written before it takes the blog's lock; a pin or an Idempotency-Key
    # takes it first. Racing on one blog from two servers, every one is published once, in
    # a gap-free log, and the blog ends with one pinned entry.
    async with (
        running_app(settings) as first,
        running_app(settings) as second,
        asgi_client(first) as one,
        asgi_client(second) as two,
    ):
        await create_blog(one, "count", "The count")

        async def publish(client: httpx.AsyncClient, desk: str, number: int) -> None:
            headers = dict(ADMIN)
            body: dict[str, object] = {"body": f"<p>Ward {number} has declared.</p>"}
            if number % 5 == 0:
                body["pinned"] = True
            elif number % 5 == 1:
                headers["Idempotency-Key"] = f"{desk}-ward-{number}"
            await publish_entry(client, "count", headers=headers, **body)

        await asyncio.gather(
            *(
                publish(client, desk, number)
                for number in range(20)
                for desk, client in (("north", one), ("south", two))
            )
        )
        events = await read_log(two, "count")
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert sum(e["type"] == "entry.created" for e in events) == 40
        entries = (await one.get("/api/v1/blogs/count/entries?limit=100")).json()["items"]
        assert len(entries) == 40
        assert sum(entry["pinned"] for entry in entries) == 1
