"""PostgreSQL LISTEN/NOTIFY broker, for deployments that have PostgreSQL but no Redis.

NOTIFY payloads are limited to 8000 bytes, so a large event is announced by its
seq alone; each process then reads it from the log, as it does for any gap.
"""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from app.installation import Identity
from app.realtime.broker import Announcement, Seal

MAX_NOTIFY_BYTES = 7900
IDLE_CHECK_SECONDS = 15


def asyncpg_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def notify_channel(identity: Identity, topic: str = "events") -> str:
    # An identifier: at most 63 characters. The change log's channel keeps its first name.
    suffix = "" if topic == "events" else f"_{topic}"
    return f"bulletin_{identity.id}{suffix}"


class PostgresBroker:
    def __init__(self, url: str, channel: str, seal: Seal) -> None:
        self.dsn = asyncpg_dsn(url)
        self.channel = channel
        self.seal = seal
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=2, timeout=5)

    async def disconnect(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def publish(self, announcement: Announcement) -> None:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL broker is not connected")
        message = self.seal.encode(announcement)
        if len(message) > MAX_NOTIFY_BYTES:
            doorbell = dataclasses.replace(announcement, payload=b"")
            message = self.seal.encode(doorbell)
        await self._pool.execute("SELECT pg_notify($1, $2)", self.channel, message.decode())

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Announcement]]:
        connection = await asyncpg.connect(self.dsn, timeout=5)
        queue: asyncio.Queue[Announcement] = asyncio.Queue(maxsize=10_000)
        lost = asyncio.Event()

        def on_notify(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            opened = self.seal.decode(payload.encode())
            if opened is not None and not queue.full():  # a dropped one is read from the log
                queue.put_nowait(opened)

        # A terminated connection delivers no more notifications, and says nothing itself:
        # fail the subscription at once, so the hub resubscribes and checks the log now.
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(self.channel, on_notify)

        async def messages() -> AsyncIterator[Announcement]:
            while True:
                if lost.is_set():
                    raise ConnectionError("the LISTEN connection to PostgreSQL was lost")
                getting = asyncio.ensure_future(queue.get())
                losing = asyncio.ensure_future(lost.wait())
                try:
                    done, _pending = await asyncio.wait(
                        {getting, losing},
                        timeout=IDLE_CHECK_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    losing.cancel()
                    if not getting.done():
                        getting.cancel()
                if getting in done:
                    yield getting.result()
                elif not done:
                    # Quiet for a while: a query raises if the connection has died.
                    await connection.fetchval("SELECT 1", timeout=5)

        try:
            yield messages()
        finally:
            connection.terminate()
