"""This installation's identity, read (or, the first time, made) when a process starts."""

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db import Database
from app.models import Installation


@dataclass(frozen=True, slots=True)
class Identity:
    # Names this installation's broker channel.
    id: str
    # Signs this installation's broker announcements.
    broker_key: bytes


async def load_identity(database: Database) -> Identity:
    """The installation's identity; made once, by whichever process gets there first."""
    async with database.read_session() as session:
        found = await session.get(Installation, 1)
    if found is not None:
        return Identity(found.id, bytes.fromhex(found.broker_key))
    async with database.write_session() as session:
        insert = (
            postgresql_insert if database.engine.dialect.name == "postgresql" else sqlite_insert
        )
        await session.execute(
            insert(Installation)
            .values(singleton=1, id=secrets.token_hex(16), broker_key=secrets.token_hex(32))
            .on_conflict_do_nothing(index_elements=["singleton"])
        )
    async with database.read_session() as session:
        made = await session.scalar(select(Installation).where(Installation.singleton == 1))
    if made is None:
        raise RuntimeError("the installation row could not be made")
    return Identity(made.id, bytes.fromhex(made.broker_key))
