"""The change log's promise: per blog, seq starts at 1 with no gaps and no repeats."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.config import Settings
from app.main import create_app
from tests.conftest import ADMIN, read_log


@asynccontextmanager
async def server_instance(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A separate app with its own engine and pool: another server on the same database."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bulletin.test") as c:
            yield c


async def test_concurrent_writers_on_two_servers_get_gap_free_seqs(settings: Settings) -> None:
    async with server_instance(settings) as one, server_instance(settings) as two:
        for slug in ("north", "south"):
            await one.post("/api/v1/blogs", json={"slug": slug, "title": slug}, headers=ADMIN)

        async def write(client: httpx.AsyncClient, slug: str, number: int) -> None:
            response = await client.post(
                f"/api/v1/blogs/{slug}/entries", json={"body": f"<p>{number}</p>"}, headers=ADMIN
            )
            assert response.status_code == 201, response.text
            entry_id = response.json()["id"]
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
