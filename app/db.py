"""The async engine and sessions.

SQLite is the embedded default and PostgreSQL the production store. On SQLite we
issue our own `BEGIN`, so a write session can take the write lock up front
(`BEGIN IMMEDIATE`): two writers then queue on the busy timeout instead of
failing when a read transaction tries to upgrade. Within one process, SQLite writers
also queue for their turn before taking a connection, so a writer held up by another
process's lock never starves reads of connections. On PostgreSQL the writers of one blog
queue the same way, per blog: its row lock then only ever has another process's writer
to wait for, and sixteen writers of one blog hold one connection, not sixteen.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager as aiosqlite_contextmanager
from sqlalchemy import Connection, Table, event, exc, insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_BEGIN_OPTION = "bulletin_sqlite_begin"


def create_engine(database_url: str) -> AsyncEngine:
    """Build the engine; SQLite gets WAL, foreign keys and explicit transactions."""
    if not database_url.startswith("sqlite"):
        return create_async_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    engine: AsyncEngine = create_async_engine(
        database_url, async_creator=lambda: _connect_lean(engine)
    )

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
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


class _LeanCursor(aiosqlite.Cursor):
    _conn: "_LeanConnection"

    async def close(self) -> None:
        self._cursor.close()  # frees the statement: no I/O, no need for the thread

    async def execute(self, sql: str, parameters: Any = None) -> aiosqlite.Cursor:
        await super().execute(sql, parameters)
        if sql.startswith("BEGIN IMMEDIATE"):
            self._conn.holds_write_lock = True
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._conn.holds_write_lock:
            return fn(*args, **kwargs)
        return await self._conn._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]


class _LeanConnection(aiosqlite.Connection):
    """An aiosqlite connection that calls SQLite where it is called when no wait can come.

    aiosqlite sends every call to the connection's thread and back, two thread switches
    each: for SQLAlchemy that was three round trips a statement (make a cursor, execute,
    close it), and one more to fetch. The connection is opened with
    `check_same_thread=False` (as SQLAlchemy does) and SQLite is built serialised
    (`sqlite3.threadsafety == 3`), so it may be called from the loop's thread:
    - cursors are made and closed there (no I/O);
    - in a transaction that holds the write lock (after its `BEGIN IMMEDIATE`), statements
      and fetches run there too: nothing can make them wait (WAL readers never block, and
      the lock is ours), and they only read and change pages (the WAL is written at
      COMMIT). The `BEGIN IMMEDIATE` itself, which may wait on another process's lock, and
      `COMMIT` or `ROLLBACK`, which write the WAL and may checkpoint, stay on the
      connection's thread, as do reads outside write transactions.
    """

    holds_write_lock = False

    @aiosqlite_contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return _LeanCursor(self, self._conn.cursor())

    async def commit(self) -> None:
        self.holds_write_lock = False
        await super().commit()

    async def rollback(self) -> None:
        self.holds_write_lock = False
        await super().rollback()


async def _connect_lean(engine: AsyncEngine) -> aiosqlite.Connection:
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    connection = _LeanConnection(
        lambda: sqlite3.connect(*args, **kwargs),  # type: ignore[call-overload]
        iter_chunk_size=64,
    )
    connection._thread.daemon = True  # as SQLAlchemy sets it: never holds up the exit
    return await connection


# PostgreSQL error classes that mean "the database is not available", not "the request is
# wrong": connection exceptions, insufficient resources (disk full, too many connections),
# operator intervention (shutting down, cannot connect now) and system errors (I/O).
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
# A database that does not accept connections (ALLOW_CONNECTIONS false, or being created).
_OUTAGE_SQLSTATES = {"55000"}


def is_outage(error: BaseException) -> bool:
    """Whether this failure is the database being unreachable, locked or out of space,
    rather than a fault of the request or of the code: somebody may retry it later."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | exc.TimeoutError | exc.OperationalError):
            return True  # refused or reset connections, pool timeouts, SQLite locked or I/O
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES or sqlstate in _OUTAGE_SQLSTATES
        ):
            return True
        if type(current).__name__ in ("ConnectionDoesNotExistError", "InterfaceError"):
            return True  # asyncpg: the connection went away under a query
        current = current.__cause__ or current.__context__
    return False


class _Turn:
    """A first-come-first-served lock kept in `turns` under `key` while anyone holds it or
    waits for it (a blog's queue is forgotten when nobody writes to it)."""

    def __init__(self, turns: dict[str, "_Turn"], key: str) -> None:
        self._lock = asyncio.Lock()
        self._users = 0
        self._turns, self._key = turns, key

    async def acquire(self) -> None:
        self._users += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._leave()
            raise

    def release(self) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        self._users -= 1
        if self._users == 0 and self._turns.get(self._key) is self:
            del self._turns[self._key]


# --- rows a transaction only adds --------------------------------------------------------
# The change log, the audit log and the revisions are only ever added to by a write, and
# nothing in the write reads a row back as an object: queued here, they are written with
# one Core INSERT per table (SQLAlchemy's unit of work cost more than the statement did),
# before the session's next query and before COMMIT, so the transaction reads what it
# wrote as it would have with `session.add`.
_APPENDED = "bulletin_appended_rows"


def append_row(session: AsyncSession, model: type[Any], row: dict[str, Any]) -> None:
    """Queue one row of `model`'s table to be inserted within this session's transaction
    (the columns' defaults apply, as with `session.add`)."""
    queued: dict[Table, list[dict[str, Any]]] = session.sync_session.info.setdefault(_APPENDED, {})
    queued.setdefault(model.__table__, []).append(row)


def _write_appended(session: Session) -> None:
    queued = session.info.pop(_APPENDED, None)
    if queued:
        connection = session.connection()
        for table, rows in queued.items():
            connection.execute(insert(table), rows)


@event.listens_for(Session, "do_orm_execute")
def _before_a_query(state: ORMExecuteState) -> None:
    _write_appended(state.session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _write_appended(session)


# Marks the queries of a process's own sweeps, so a count of what a request costs leaves them out.
BACKGROUND = "bulletin_background"


class Database:
    """Owns the engine; hands out read sessions and serialised write sessions."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.is_sqlite = database_url.startswith("sqlite")
        # SQLite has one writer at a time. Writers of this process queue here, holding no
        # connection, instead of each holding one while it waits on the file lock: the
        # pool stays free for reads, probes and new streams while a writer is held up.
        self._writer_turn = asyncio.Semaphore(1) if self.is_sqlite else None
        # PostgreSQL: one queue per blog (by its slug), dropped when nobody is in it.
        self._blog_turns: dict[str, _Turn] = {}
        self.writers_waiting = 0
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        writer_bind = (
            self.engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            if self.is_sqlite
            else self.engine
        )
        self._writer = async_sessionmaker(writer_bind, expire_on_commit=False)

    @asynccontextmanager
    async def read_session(self, background: str | None = None) -> AsyncIterator[AsyncSession]:
        """A session for reads; `background` names a sweep whose queries it marks (BACKGROUND)."""
        async with self._reader() as session:
            if background is not None:
                await session.connection(execution_options={BACKGROUND: background})
            yield session

    @asynccontextmanager
    async def write_session(self, blog: str | None = None) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        `blog` names the blog (slug) the transaction will lock, if it is known: on
        PostgreSQL this process's writers of that blog then take turns, first come first
        served, before they take a connection (on SQLite every writer takes turns)."""
        turn = self._writer_turn if self._writer_turn is not None else self._blog_turn(blog)
        if turn is None:
            async with self._writer() as session, session.begin():
                yield session
            return
        self.writers_waiting += 1
        try:
            await turn.acquire()
        finally:
            self.writers_waiting -= 1
        try:
            async with self._writer() as session, session.begin():
                yield session
        finally:
            turn.release()

    def _blog_turn(self, blog: str | None) -> _Turn | None:
        if blog is None:
            return None
        turn = self._blog_turns.get(blog)
        if turn is None:
            turn = self._blog_turns[blog] = _Turn(self._blog_turns, blog)
        return turn

    def pool_checked_out(self) -> int:
        """Connections checked out of the pool now (for the pool gauges)."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        return int(checked_out()) if checked_out is not None else 0

    def pool_size(self) -> int:
        """The connections the pool keeps (it may open its overflow beyond them)."""
        size = getattr(self.engine.pool, "size", None)
        return int(size()) if size is not None else 0

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
