"""The Alembic migrations, run from an empty database to head and back, on SQLite and PostgreSQL."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrating
from app.db import Database
from app.tokens import TokenStore
from tests.support.databases import database_on_same_server, execute, postgres_admin_url

APP_TABLES = {
    "blogs",
    "entries",
    "events",
    "tokens",
    "webhooks",
    "webhook_deliveries",
    "installation",
    "users",
    "memberships",
    "token_blogs",
    "audit_records",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bulletin.db'}"
        return
    admin_url = postgres_admin_url()
    name = f"bulletin_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield database_on_same_server(admin_url, name)
    finally:
        asyncio.run(execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
