"""The async engine and sessions.

SQLite is the embedded default and PostgreSQL the production store. On SQLite we
issue our own `BEGIN`, so a write session can take the write lock up front
(`BEGIN IMMEDIATE`): two writers then queue on the busy timeout instead of
failing when a read transaction tries to upgrade.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "bulletin_sqlite_begin"


def create_engine(database_url: str) -> AsyncEngine:
    """Build the engine; SQLite gets WAL, foreign keys and explicit transactions."""
    if not database_url.startswith("sqlite"):
        return create_async_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    engine = create_async_engine(database_url)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        # Let us emit BEGIN ourselves (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """Owns the engine; hands out read sessions and serialised write sessions."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.is_sqlite = database_url.startswith("sqlite")
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        writer_bind = (
            self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            if self.is_sqlite
            else self.engine
        )
        self._writer = async_sessionmaker(writer_bind, expire_on_commit=False)

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._writer() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
