"""Scheduled publishing across SIGKILL, on PostgreSQL with two real `bulletin serve`
processes: the process holding a scheduled entry's lease is killed before the due time, and
the other publishes it, once; the process that published one is killed right after, and
nothing publishes it again. Each time the log holds one `entry.created` for the entry and its
seqs have no gap.

Every wait is on something observable — the lease owner in the database, a log row — and
bounded.
"""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.db import Database
from app.models import Entry, Event
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN, create_blog, read_log
from tests.support.servers import ServerProcess, serve_environment
from tests.support.waiting import eventually

SLUG = "count-night"
ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
# A process claims what falls due before its next sweep: with 3 s the lease is held for up to
# 3 s before the due time, room enough to kill its holder then.
SWEEP_SECONDS = 3.0
LEASE_SECONDS = 2.0
WAIT_SECONDS = 60


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test's own connection to the servers' database, to watch leases and the log."""
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def pair(database_url: str, serve: Callable[..., ServerProcess]) -> list[ServerProcess]:
    env = serve_environment(
        database_url,
        schedule_sweep_seconds=str(SWEEP_SECONDS),
        schedule_lease_seconds=str(LEASE_SECONDS),
        log_level="info",
    )
    return [serve(env, "first"), serve(env, "second")]


async def lease_of(database: Database, entry_id: int) -> tuple[str | None, str]:
    async with database.read_session() as session:
        owner, status = (
            await session.execute(
                select(Entry.schedule_lease_owner, Entry.status).where(Entry.id == entry_id)
            )
        ).one()
    return owner, status


async def created_events(database: Database, entry_id: int) -> list[int]:
    async with database.read_session() as session:
        rows = await session.scalars(
            select(Event.seq).where(Event.entry_id == entry_id, Event.type == "entry.created")
        )
        return list(rows)


def holder(pair: list[ServerProcess], owner: str) -> ServerProcess:
    """The server process whose scheduler holds a lease (its owner names the pid)."""
    pid = int(owner.split(":")[1])
    (found,) = [server for server in pair if server.process and server.process.pid == pid]
    return found


async def schedule(
    client: httpx.AsyncClient, headline: str, seconds: float
) -> tuple[int, datetime]:
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    response = await client.post(
        ENTRIES, json={"headline": headline, "publish_at": due.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 202, response.text
    return response.json()["id"], due


async def assert_log_whole(base: str, entry_ids: list[int]) -> None:
    """Each entry was created once in the log, and its seqs run 1..head without a gap."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        log = await read_log(client, SLUG)
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    created = [event["entry"]["id"] for event in log if event["type"] == "entry.created"]
    assert sorted(created) == sorted(entry_ids)


async def test_the_lease_holder_killed_before_the_due_time_leaves_it_to_the_other_once(
    pair: list[ServerProcess], database: Database
) -> None:
    async with httpx.AsyncClient(base_url=pair[0].http, timeout=10) as client:
        await create_blog(client, SLUG)
        entry_id, due = await schedule(client, "Results at ten", SWEEP_SECONDS + 3)

    owner, status = await eventually(
        lambda: lease_of(database, entry_id), WAIT_SECONDS, "a process to lease the entry",
        holds=lambda lease: lease[0] is not None,
    )  # fmt: skip
    killed = holder(pair, owner)
    killed.kill()
    assert datetime.now(UTC) < due and status == "scheduled"  # killed before it was due
    (survivor,) = [server for server in pair if server is not killed]

    seqs = await eventually(
        lambda: created_events(database, entry_id), WAIT_SECONDS, "the survivor to publish it"
    )
    assert seqs == [1]
    async with database.read_session() as session:
        entry = await session.get(Entry, entry_id)
    assert entry is not None and entry.status == "published"
    assert entry.published_at >= due + timedelta(seconds=LEASE_SECONDS)  # after the lease
    # A later schedule on the survivor goes out too: its scheduler has swept since, and the
    # first entry is still logged once.
    async with httpx.AsyncClient(base_url=survivor.http, timeout=10) as client:
        later_id, _ = await schedule(client, "Turnout", 1)
    await eventually(lambda: created_events(database, later_id), WAIT_SECONDS, "the later one")
    assert await created_events(database, entry_id) == [1]
    await assert_log_whole(survivor.http, [entry_id, later_id])


async def test_the_process_that_published_killed_right_after_leaves_it_published_once(
    pair: list[ServerProcess], database: Database
) -> None:
    async with httpx.AsyncClient(base_url=pair[0].http, timeout=10) as client:
        await create_blog(client, SLUG)
        entry_id, due = await schedule(client, "Polls close", 2)

    owner, _status = await eventually(
        lambda: lease_of(database, entry_id), WAIT_SECONDS, "a process to lease the entry",
        holds=lambda lease: lease[0] is not None,
    )  # fmt: skip
    publisher = holder(pair, owner)
    assert await eventually(
        lambda: created_events(database, entry_id), WAIT_SECONDS, "the holder to publish it"
    ) == [1]
    publisher.kill()
    (survivor,) = [server for server in pair if server is not publisher]
    # The killed one comes back; both sweep past the dead process's lease, and publish a later
    # schedule, which is due after that lease would have run out.
    publisher.start()
    later_due = max(2.0, (due - datetime.now(UTC)).total_seconds() + LEASE_SECONDS + 1)
    async with httpx.AsyncClient(base_url=survivor.http, timeout=10) as client:
        later_id, _ = await schedule(client, "Turnout", later_due)
    await eventually(lambda: created_events(database, later_id), WAIT_SECONDS, "the later one")
    assert await created_events(database, entry_id) == [1]
    await assert_log_whole(survivor.http, [entry_id, later_id])


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


async def test_a_schedule_survives_its_only_process_killed_and_restarted_on_sqlite(
    sqlite_url: str, serve: Callable[..., ServerProcess]
) -> None:
    database_url = sqlite_url
    env = serve_environment(
        database_url,
        schedule_sweep_seconds=str(SWEEP_SECONDS),
        schedule_lease_seconds=str(LEASE_SECONDS),
    )
    server = serve(env)
    database = Database(database_url)
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
            await create_blog(client, SLUG)
            entry_id, _due = await schedule(client, "Results at ten", SWEEP_SECONDS)
        await eventually(
            lambda: lease_of(database, entry_id), WAIT_SECONDS, "the process to lease it",
            holds=lambda lease: lease[0] is not None,
        )  # fmt: skip
        server.kill()
        assert await created_events(database, entry_id) == []
        server.start()
        seqs = await eventually(
            lambda: created_events(database, entry_id), WAIT_SECONDS, "the restart to publish it"
        )
        assert seqs == [1]
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
            later_id, _ = await schedule(client, "Turnout", 2)
        await eventually(lambda: created_events(database, later_id), WAIT_SECONDS, "the later one")
        assert await created_events(database, entry_id) == [1]
        await assert_log_whole(server.http, [entry_id, later_id])
    finally:
        await database.dispose()
