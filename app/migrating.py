"""Apply and revert the Alembic migrations in `migrations/` programmatically."""

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import normalise_database_url
from app.db import _BEGIN_OPTION, create_engine

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


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`, one process at a time: replicas that start
    together all succeed, the first migrating and the others finding it done.

    The whole upgrade is one transaction on one connection. On PostgreSQL that connection
    first takes an advisory lock, held until the transaction has committed; on SQLite the
    transaction begins IMMEDIATE, so it holds the file's write lock from its first read.
    Either way a second process reads the schema's revision only once the first is done.
    Blocking: call it outside an event loop (or from a thread).
    """
    url = normalise_database_url(database_url)
    asyncio.run(_upgrade_alone(url, alembic_config(url), revision))


async def _upgrade_alone(url: str, config: Config, revision: str) -> None:
    engine = create_engine(url)
    is_postgres = engine.dialect.name == "postgresql"
    try:
        async with engine.connect() as connection:
            if is_postgres:
                await _lock_migrations(connection, "pg_advisory_lock")
            else:
                await connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            try:
                # Begun here, so Alembic runs every migration inside it (on SQLite it
                # would otherwise commit after each one, letting another process in).
                async with connection.begin():
                    await connection.run_sync(_upgrade_on, config, revision)
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


def _upgrade_on(connection: Connection, config: Config, revision: str) -> None:
    # migrations/env.py runs on this connection, inside its transaction, when given one.
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, revision)
    finally:
        del config.attributes["connection"]


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
