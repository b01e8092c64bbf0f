"""Throwaway databases for tests, and the database and broker pairs streams are tested on.

SQLite: a copy of a migrated file per test. PostgreSQL: one migrated database per test
session, emptied before each test that asks for it.
"""

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from sqlalchemy import select

from app.db import Database
from app.models import Base

POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("BULLETIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = [table.name for table in reversed(Base.metadata.sorted_tables)]

# Database and broker pairs. Most stream tests run the first two, which cover both
# databases and the two main brokers; cross-process tests add PostgreSQL's LISTEN/NOTIFY.
STACKS = {
    "sqlite-memory": ("sqlite", "memory"),
    "postgresql-redis": ("postgresql", "redis"),
    "postgresql-notify": ("postgresql", "postgresql"),
}


def postgres_admin_url() -> str:
    """The PostgreSQL server the suite makes its databases on (its `postgres` database)."""
    return os.environ.get("BULLETIN_TEST_POSTGRES_URL") or POSTGRES_ADMIN_URL


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def execute(url: str, statement: str) -> None:
    """Run one SQL statement (or several, `;`-separated) on its own connection."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def database_on_same_server(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{name}"


def empty_postgres(url: str) -> None:
    asyncio.run(execute(url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


def fresh_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of this kind ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        path = tmp_path / "bulletin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url


def broker_url(broker: str, database_url: str) -> str:
    """The broker URL for a stack's broker kind; Redis must answer (never a silent skip)."""
    if broker == "redis":
        asyncio.run(redis_ping(REDIS_URL))
        return REDIS_URL
    if broker == "postgresql":
        return database_url
    return "memory://"


async def redis_ping(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def stored_rows(database: Database) -> dict[str, list[tuple]]:
    """Every row of every table, one SELECT per table, in primary-key order."""
    rows: dict[str, list[tuple]] = {}
    async with database.read_session() as session:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in await session.execute(query)]
    return rows
