"""SQLite has one writer: writers held up by another process's lock must not starve reads."""

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from app.schemas import BlogCreate
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN_TOKEN
from tests.support.servers import LiveServer, live_server, served_settings

SLUG = "dam-release"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRITERS = 20


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


@pytest.fixture
async def server(sqlite_url: str) -> AsyncIterator[LiveServer]:
    settings = served_settings(sqlite_url)
    async with live_server(settings) as running:
        await running.app.state.services.publisher.create_blog(
            BlogCreate(slug=SLUG, title="Dam release")
        )
        yield running


async def writers_waiting(server: LiveServer) -> int:
    metrics = (await server.client.get("/metrics")).text
    return int(float(re.search(r"^bulletin_writers_waiting (\S+)$", metrics, re.M).group(1)))


async def test_reads_probes_and_new_streams_are_served_while_writers_wait_on_a_lock(
    server: LiveServer, sqlite_url: str
) -> None:
    # Another process (a backup, a migration, a sqlite3 shell) holds the write lock.
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        posts = [
            asyncio.create_task(
                client.post(
                    f"/api/v1/blogs/{SLUG}/entries",
                    json={"body": f"<p>Gate {number} open.</p>"},
                    headers=ADMIN,
                )
            )
            for number in range(WRITERS)
        ]
        try:
            # Every writer is in: one waits on the lock, the rest wait for their turn.
            async with asyncio.timeout(20):
                while await writers_waiting(server) < WRITERS - 1:
                    await asyncio.sleep(0.02)

            async def reads() -> list[int]:
                statuses = [
                    (await client.get(path)).status_code
                    for path in (
                        f"/api/v1/blogs/{SLUG}/entries",
                        f"/api/v1/blogs/{SLUG}/events?since=0",
                        f"/api/v1/blogs/{SLUG}",
                        "/readyz",
                    )
                ]
                async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as stream:
                    statuses.append(json.loads(await stream.recv())["seq"])  # its hello
                return statuses

            # Answered while the lock is still held: not queued behind the writers.
            assert await asyncio.wait_for(reads(), 10) == [200, 200, 200, 200, 0]
        finally:
            other.execute("COMMIT")
            other.close()
        answers = await asyncio.gather(*posts)
    assert [answer.status_code for answer in answers] == [201] * WRITERS
