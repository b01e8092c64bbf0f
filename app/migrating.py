"""Apply and revert the Alembic migrations in `migrations/` programmatically."""

import asyncio
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import normalise_database_url
from app.db import SQLITE_BEGIN_OPTION, create_engine, is_outage
from app.errors import BulletinError

# The PostgreSQL advisory lock every `upgrade()` holds, whichever process runs it
# ("bulletin" in ASCII). Advisory locks are per database: installations that share a
# server do not wait for each other.
MIGRATION_LOCK_KEY = 0x62756C6C6574696E


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    url = normalise_database_url(database_url)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> str | None:
    """Bring the schema up to `revision`, one process at a time: replicas that start
    together all succeed, the first migrating and the others finding it done.

    The whole upgrade is one transaction on one connection. On PostgreSQL that connection
    first takes an advisory lock, held until the transaction has committed; on SQLite the
    transaction begins IMMEDIATE, so it holds the file's write lock from its first read.
    Either way a second process reads the schema's revision only once the first is done.
    Blocking: call it outside an event loop (or from a thread). Returns the revision the
    schema was at when this process got its turn (None: an empty database).
    """
    url = normalise_database_url(database_url)
    return asyncio.run(_upgrade_alone(url, alembic_config(url), revision))


async def _upgrade_alone(url: str, config: Config, revision: str) -> str | None:
    engine = create_engine(url)
    is_postgres = engine.dialect.name == "postgresql"
    try:
        async with engine.connect() as connection:
            if is_postgres:
                await _lock_migrations(connection, "pg_advisory_lock")
            else:
                await connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            try:
                # Begun here, so Alembic runs every migration inside it (on SQLite it
                # would otherwise commit after each one, letting another process in).
                async with connection.begin():
                    return await connection.run_sync(_upgrade_on, config, revision)
            finally:
                # Ending the session would release the lock too; say so while it is up.
                if is_postgres and not connection.invalidated:
                    await _lock_migrations(connection, "pg_advisory_unlock")
    finally:
        await engine.dispose()


async def _lock_migrations(connection: AsyncConnection, function: str) -> None:
    """Take or release the migration lock; a session lock, so it outlives transactions."""
    await connection.execute(text(f"SELECT {function}(:key)"), {"key": MIGRATION_LOCK_KEY})
    await connection.commit()


def _upgrade_on(connection: Connection, config: Config, revision: str) -> str | None:
    # Read under the lock: a process that waited for another finds the schema it left.
    before = MigrationContext.configure(connection).get_current_revision()
    # migrations/env.py runs on this connection, inside its transaction, when given one.
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, revision)
    finally:
        del config.attributes["connection"]
    return before


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


# --- whether a database is ready: what every CLI command checks before it starts -----


class DatabaseNotReady(BulletinError):
    """The database is missing, unreachable or not at the newest migration."""

    status = 503
    code = "database_not_ready"


def describe(database_url: str) -> str:
    """Where the database is, for people: a SQLite file's path, or the URL without password."""
    url = make_url(normalise_database_url(database_url))
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database or "").resolve()) if url.database else "(in memory)"
    return url.render_as_string(hide_password=True)


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite."""
    url = make_url(normalise_database_url(database_url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def head_revision(database_url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None, "migrations/versions holds no migration"
    return head


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None if never migrated), creating nothing:
    a missing SQLite file is DatabaseNotReady, not an empty new database."""
    where = describe(database_url)
    database_file = sqlite_file(database_url)
    if database_file is not None and not database_file.is_file():
        raise DatabaseNotReady(f"no database at {where}: run `bulletin migrate` to create it")
    engine = create_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    except Exception as error:
        if is_outage(error):
            raise DatabaseNotReady(f"cannot reach the database at {where}: {error}") from None
        raise
    finally:
        await engine.dispose()


async def require_migrated(database_url: str) -> None:
    """Raise DatabaseNotReady, in one line an operator can act on, unless the schema is new."""
    current, head = await current_revision(database_url), head_revision(database_url)
    if current != head:
        state = "is not migrated" if current is None else f"is at migration {current}, not {head}"
        raise DatabaseNotReady(
            f"the database at {describe(database_url)} {state}: run `bulletin migrate`"
        )


def migrate(database_url: str) -> str:
    """Bring the database to the newest migration; says what was done, for the operator."""
    where = describe(database_url)
    database_file = sqlite_file(database_url)
    created = database_file is not None and not database_file.exists()
    if database_file is not None:
        database_file.parent.mkdir(parents=True, exist_ok=True)
    # What the schema was when this process's turn came, not before it waited for another's.
    before = upgrade(database_url)
    head = head_revision(database_url)
    if created:
        return f"created the database at {where} and applied every migration (now at {head})"
    if before == head:
        return f"the database at {where} is up to date (migration {head})"
    if before is None:
        return f"applied every migration to the database at {where} (now at {head})"
    return f"migrated the database at {where} from {before} to {head}"
