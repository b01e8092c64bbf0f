"""The doorbell between processes: every committed event is announced to every process.

A broker may lose or repeat messages (Redis pub/sub is at-most-once); the hub
recovers from the database log, so nothing here has to be reliable. Backends
are chosen by URL scheme, each in its own module, imported only when used.

A broker is not trusted either. Each installation has its own channel (Redis pub/sub
ignores the database number, so installations sharing a Redis would otherwise hear each
other), and every announcement that crosses a process boundary is signed with the
installation's broker key (HMAC-SHA256, the key kept in its database): one that anybody
else wrote to the channel — a raw PUBLISH, or a NOTIFY from any role that can connect —
is dropped and counted, never delivered.
"""

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from app.installation import Identity

logger = logging.getLogger("bulletin.broker")

MAC_HEX = 32  # 128 bits of HMAC-SHA256
REFUSAL_LOG_SECONDS = 60.0
# Marks the form of an announcement that carries its commit time and request id.
SECOND_FORM = b"~2"


@dataclass(frozen=True, slots=True)
class Announcement:
    """A committed event: its blog, its seq and its wire bytes (empty: read it from the log)."""

    blog: str
    blog_id: int
    seq: int
    payload: bytes
    # When the publishing process committed it (Unix time), and the id of the request that
    # did (app/logs.py): for the delivery latency metric and the other processes' logs.
    committed_at: float = 0.0
    request_id: str = ""


class Seal:
    """Signs this installation's announcements; opens only announcements it signed."""

    def __init__(self, key: bytes, refused: Callable[[], None] | None = None) -> None:
        self._key = key
        self._refused = refused
        self._logged_at = -REFUSAL_LOG_SECONDS

    def _mac(self, head: bytes, payload: bytes) -> bytes:
        digest = hmac.new(self._key, head + payload, hashlib.sha256).hexdigest()
        return digest[:MAC_HEX].encode()

    def encode(self, announcement: Announcement) -> bytes:
        """`mac \\n blog \\n blog_id \\n seq \\n payload`; an announcement with a commit time
        or a request id takes the second form, `mac \\n ~2 \\n blog \\n blog_id \\n seq \\n
        committed_at \\n request_id \\n payload` (`~` is in no slug or origin, so the forms
        cannot be confused). Both are decoded; a process older than the second form drops it
        as unsigned and catches up from the log at its next check of the heads."""
        head = b"%s\n%d\n%d\n" % (
            announcement.blog.encode(),
            announcement.blog_id,
            announcement.seq,
        )
        if announcement.committed_at or announcement.request_id:
            request_id = announcement.request_id
            if not request_id.isascii() or "\n" in request_id:
                request_id = ""
            head = b"%s\n%s%.6f\n%s\n" % (
                SECOND_FORM,
                head,
                announcement.committed_at,
                request_id.encode(),
            )
        return self._mac(head, announcement.payload) + b"\n" + head + announcement.payload

    def decode(self, raw: bytes) -> Announcement | None:
        """The announcement, or None (counted, and logged now and then) if it is not ours."""
        try:
            mac, rest = raw.split(b"\n", 1)
            if rest.startswith(SECOND_FORM + b"\n"):
                form, blog, blog_id, seq, committed_at, request_id, payload = rest.split(b"\n", 6)
                head = b"%s\n%s\n%s\n%s\n%s\n%s\n" % (
                    form,
                    blog,
                    blog_id,
                    seq,
                    committed_at,
                    request_id,
                )
                if hmac.compare_digest(mac, self._mac(head, payload)):
                    return Announcement(
                        blog.decode(),
                        int(blog_id),
                        int(seq),
                        payload,
                        committed_at=float(committed_at),
                        request_id=request_id.decode("ascii"),
                    )
            else:
                blog, blog_id, seq, payload = rest.split(b"\n", 3)
                head = b"%s\n%s\n%s\n" % (blog, blog_id, seq)
                if hmac.compare_digest(mac, self._mac(head, payload)):
                    return Announcement(blog.decode(), int(blog_id), int(seq), payload)
        except ValueError:  # a missing field, a number that is not one (UnicodeError too)
            pass
        if self._refused is not None:
            self._refused()
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_SECONDS:
            self._logged_at = now
            logger.warning("dropped a broker message this installation did not sign")
        return None


class Broker(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def publish(self, announcement: Announcement) -> None:
        """Announce to every process, this one included. May raise when the backend is down."""

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Announcement]]:
        """Announcements from every process; raises when the connection is lost."""
        ...


# What a broker carries: the change log's events, (app/realtime/newsroom.py) the
# newsroom's private notes, or (app/realtime/audience.py) each process's reader counts,
# each on a channel of its own.
Topic = Literal["events", "newsroom", "readers"]


def create_broker(
    url: str,
    identity: Identity,
    refused: Callable[[], None] | None = None,
    topic: Topic = "events",
) -> Broker:
    """The broker for this URL, on this installation's channel for `topic`, sealed with its
    key."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from app.realtime.broker.memory import MemoryBroker

        return MemoryBroker()  # one process: nothing crosses a boundary
    seal = Seal(identity.broker_key, refused)
    if scheme in {"redis", "rediss", "unix"}:
        from app.realtime.broker.redis import RedisBroker, redis_channel

        return RedisBroker(url, redis_channel(identity, topic), seal)
    if scheme in {"postgresql", "postgres", "postgresql+asyncpg"}:
        from app.realtime.broker.postgres import PostgresBroker, notify_channel

        return PostgresBroker(url, notify_channel(identity, topic), seal)
    raise ValueError(
        f"unknown broker URL scheme {scheme!r}: use memory://, redis:// or postgresql://"
    )
