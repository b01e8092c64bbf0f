"""The Alembic migrations, run from an empty database to head and back, on SQLite and PostgreSQL."""

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrating
from app.db import Database
from app.tokens import TokenStore
from tests.support.databases import (
    asyncpg_dsn,
    database_on_same_server,
    execute,
    postgres_admin_url,
)
from tests.support.servers import BULLETIN
from tests.support.waiting import eventually

APP_TABLES = {
    "blogs",
    "entries",
    "events",
    "tokens",
    "webhooks",
    "webhook_deliveries",
    "installation",
    "media",
    "users",
    "memberships",
    "token_blogs",
    "audit_records",
    "entry_revisions",
    "sign_in_sessions",
    "editing_flags",
    "entry_tags",
}


@contextlib.contextmanager
def new_postgres_database() -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    admin_url = postgres_admin_url()
    name = f"bulletin_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield database_on_same_server(admin_url, name)
    finally:
        asyncio.run(execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bulletin.db'}"
        return
    with new_postgres_database() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    with new_postgres_database() as url:
        yield url


def schema_state(url: str) -> tuple[set[str], str | None]:
    """The database's table names and its current Alembic revision."""

    def read(connection) -> tuple[set[str], str | None]:
        revision = MigrationContext.configure(connection).get_current_revision()
        return set(inspect(connection).get_table_names()), revision

    async def connect_and_read() -> tuple[set[str], str | None]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(connect_and_read())


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(migrating.alembic_config(url)).get_current_head()


def test_upgrade_creates_every_table_at_the_head_revision(empty_database_url: str) -> None:
    assert schema_state(empty_database_url) == (set(), None)

    migrating.upgrade(empty_database_url)

    tables, revision = schema_state(empty_database_url)
    assert tables == APP_TABLES | {"alembic_version"}
    assert revision == head_revision(empty_database_url) is not None


def test_downgrade_to_base_drops_every_table_and_can_be_upgraded_again(
    empty_database_url: str,
) -> None:
    migrating.upgrade(empty_database_url)

    migrating.downgrade(empty_database_url)

    tables, revision = schema_state(empty_database_url)
    assert tables <= {"alembic_version"}
    assert revision is None

    migrating.upgrade(empty_database_url)
    assert schema_state(empty_database_url)[0] == APP_TABLES | {"alembic_version"}


def test_upgrading_an_up_to_date_database_changes_nothing_and_keeps_its_rows(
    empty_database_url: str,
) -> None:
    migrating.upgrade(empty_database_url)
    before = schema_state(empty_database_url)

    async def store_token() -> None:
        database = Database(empty_database_url)
        try:
            await TokenStore(database).create("desk", "publish")
        finally:
            await database.dispose()

    async def token_names() -> list[str]:
        database = Database(empty_database_url)
        try:
            return [token.name for token in await TokenStore(database).list()]
        finally:
            await database.dispose()

    asyncio.run(store_token())

    migrating.upgrade(empty_database_url)

    assert schema_state(empty_database_url) == before
    assert asyncio.run(token_names()) == ["desk"]


def assert_migrated_to_head(url: str) -> None:
    tables, revision = schema_state(url)
    assert tables == APP_TABLES | {"alembic_version"}
    assert revision == head_revision(url) is not None


async def test_two_migrate_commands_started_together_on_an_empty_postgres_database_both_succeed(
    empty_postgres_url: str,
) -> None:
    # Two replicas starting at once. To make "at once" exact, new connections to the
    # database are held at the door (its catalogue locked) until both processes wait
    # there, then let in together: without the migration lock they then always collide.
    environment = {**os.environ, "BULLETIN_DATABASE_URL": empty_postgres_url}
    door = await asyncpg.connect(asyncpg_dsn(empty_postgres_url))
    try:
        closed = door.transaction()
        await closed.start()
        await door.execute("LOCK TABLE pg_catalog.pg_class IN ACCESS EXCLUSIVE MODE")
        processes = [
            await asyncio.create_subprocess_exec(
                str(BULLETIN),
                "migrate",
                env=environment,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        await eventually(
            lambda: waiting_connections(door), 30, "both processes to wait", holds=(2).__eq__
        )
        await closed.commit()
        outcomes = [await process.communicate() for process in processes]
    finally:
        await door.close()

    assert [process.returncode for process in processes] == [0, 0], outcomes
    await asyncio.to_thread(assert_migrated_to_head, empty_postgres_url)


async def waiting_connections(connection: asyncpg.Connection) -> int:
    """Connections to this connection's database that wait for a lock."""
    return await connection.fetchval(
        "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )


# `bulletin migrate` in a process that has imported everything and then waits for one
# line on its standard input: given the line together, two processes begin migrating
# within a millisecond or so of each other. (SQLite has no door to hold them at.)
MIGRATE_ON_CUE = (
    "import sys, app.cli, app.migrating; sys.stdin.readline(); app.cli.main(['migrate'])"
)


def test_two_migrate_commands_started_together_on_a_new_sqlite_file_both_succeed(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bulletin.db'}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_ON_CUE],
            env={**os.environ, "BULLETIN_DATABASE_URL": url},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    outcomes = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outcomes
    assert_migrated_to_head(url)
