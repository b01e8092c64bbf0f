"""The doorbell between processes: every committed event is announced to every process.

A broker may lose or repeat messages (Redis pub/sub is at-most-once); the hub
recovers from the database log, so nothing here has to be reliable. Backends
are chosen by URL scheme, each in its own module, imported only when used.
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Announcement:
    """A committed event: its blog, its seq and its wire bytes (empty: read it from the log)."""

    blog: str
    seq: int
    payload: bytes

    def encode(self) -> bytes:
        return b"%s\n%d\n%s" % (self.blog.encode(), self.seq, self.payload)

    @classmethod
    def decode(cls, raw: bytes) -> "Announcement":
        blog, seq, payload = raw.split(b"\n", 2)
        return cls(blog.decode(), int(seq), payload)


class Broker(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def publish(self, announcement: Announcement) -> None:
        """Announce to every process, this one included. May raise when the backend is down."""

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Announcement]]:
        """Announcements from every process; raises when the connection is lost."""
        ...


def create_broker(url: str) -> Broker:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from app.realtime.broker.memory import MemoryBroker

        return MemoryBroker()
    if scheme in {"redis", "rediss", "unix"}:
        from app.realtime.broker.redis import RedisBroker

        return RedisBroker(url)
    if scheme in {"postgresql", "postgres", "postgresql+asyncpg"}:
        from app.realtime.broker.postgres import PostgresBroker

        return PostgresBroker(url)
    raise ValueError(
        f"unknown broker URL scheme {scheme!r}: use memory://, redis:// or postgresql://"
    )
