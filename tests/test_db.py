"""Write sessions: SQLite's writers held up by another process's lock must not starve reads;
PostgreSQL's writers of one blog queue in the process, in order; the rows a write only adds
(the logs, the revisions) are there for the write's own reads."""

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from app import audit
from app.db import Database
from app.models import AuditRecord
from app.people.roles import SYSTEM
from app.schemas import BlogCreate
from tests.support.clients import read_metrics
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN_TOKEN
from tests.support.servers import LiveServer, live_server, served_settings

SLUG = "dam-release"
OTHER_SLUG = "river-levels"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRITERS = 20


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind (a test that asks for PostgreSQL alone says so)."""
    return fresh_database(request.param, request, tmp_path)


@asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[LiveServer]:
    """A served app on this database, with two blogs."""
    async with live_server(served_settings(database_url)) as running:
        publisher = running.app.state.services.publisher
        await publisher.create_blog(BlogCreate(slug=SLUG, title="Dam release"))
        await publisher.create_blog(BlogCreate(slug=OTHER_SLUG, title="River levels"))
        yield running


@pytest.fixture
async def server(sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with serving(sqlite_url) as running:
        yield running


async def gauge(server: LiveServer, name: str) -> int:
    return int((await read_metrics(server.client))[name])


async def writers_waiting(server: LiveServer) -> int:
    return await gauge(server, "bulletin_writers_waiting")


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


# --- PostgreSQL: the writers of one blog queue in the process, per blog ---------------------

# Backends waiting on a lock in the database.
LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


@pytest.fixture
async def postgres_server(any_database: str) -> AsyncIterator[LiveServer]:
    async with serving(any_database) as running:
        yield running


@pytest.mark.parametrize("any_database", ["postgresql"], indirect=True)
async def test_postgres_writers_of_one_blog_queue_in_order_on_one_connection(
    postgres_server: LiveServer,
) -> None:
    server = postgres_server
    url = server.app.state.services.settings.database_url.replace("+asyncpg", "")
    # Another process's writer holds the blog's row lock, as Bulletin's own writers take it.
    other = await asyncpg.connect(url)
    transaction = other.transaction()
    await transaction.start()
    await other.execute("SELECT 1 FROM blogs WHERE slug = $1 FOR NO KEY UPDATE", SLUG)
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        idle_connections = await gauge(server, "bulletin_db_pool_checked_out")
        posts: list[asyncio.Task[httpx.Response]] = []
        try:
            for number in range(WRITERS):
                posts.append(
                    asyncio.create_task(
                        client.post(
                            f"/api/v1/blogs/{SLUG}/entries",
                            json={"body": f"<p>Gate {number} open.</p>"},
                            headers=ADMIN,
                        )
                    )
                )
                # One at a time, so the order they came in is known: the first waits on the
                # row lock in the database, each next one in the process's queue.
                async with asyncio.timeout(20):
                    while not (
                        await writers_waiting(server) == number
                        and await other.fetchval(LOCK_WAITERS) == 1
                    ):
                        await asyncio.sleep(0.01)
            # Twenty writers of the blog hold one connection between them, not twenty (the
            # margin is for the process's own sweeps, which may hold one at that moment).
            assert await gauge(server, "bulletin_db_pool_checked_out") <= idle_connections + 3
            # Another blog's writer does not queue behind them.
            other_blog = await client.post(
                f"/api/v1/blogs/{OTHER_SLUG}/entries",
                json={"body": "<p>The river is falling.</p>"},
                headers=ADMIN,
            )
            assert other_blog.status_code == 201
            assert not any(post.done() for post in posts)
        finally:
            await transaction.rollback()
            await other.close()
        answers = await asyncio.gather(*posts)
        assert [answer.status_code for answer in answers] == [201] * WRITERS
        # Served first come, first served: the log numbers them in the order they were sent.
        events = (await client.get(f"/api/v1/blogs/{SLUG}/events?since=0")).json()["items"]
    by_entry = {event["entry"]["id"]: event["seq"] for event in events}
    seqs = [by_entry[answer.json()["id"]] for answer in answers]
    assert seqs == sorted(seqs) == list(range(1, WRITERS + 1))
    assert await writers_waiting(server) == 0


# --- rows a transaction only adds (the logs, the revisions) -----------------------------


async def test_a_write_reads_back_the_log_rows_it_added_and_a_failed_one_leaves_none(
    any_database: str,
) -> None:
    database = Database(any_database)
    try:
        async with database.write_session() as session:
            audit.record(session, SYSTEM, "blog.settings_changed", details={"fields": []})
            # Read in the same transaction, before its commit: there, as with session.add.
            assert await session.scalar(select(func.count()).select_from(AuditRecord)) == 1
        with pytest.raises(RuntimeError):
            async with database.write_session() as session:
                audit.record(session, SYSTEM, "blog.settings_changed", details={"fields": []})
                raise RuntimeError("the change failed after its record was added")
        async with database.read_session() as session:
            actions = (await session.scalars(select(AuditRecord.action))).all()
        assert actions == ["blog.settings_changed"]
    finally:
        await database.dispose()
