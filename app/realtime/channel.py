"""One blog followed by this process: what was delivered, a bounded tail, and the readers.

The hub (app/realtime/hub.py) owns the channels and decides when to deliver; a
channel keeps the state of one blog and the reader interface the hub writes to.
"""

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from app.realtime.codes import CloseCode
from app.realtime.frames import Form, Outgoing

# Every channel ever loaded in this process gets its own number, never reused.
_followings = itertools.count(1)


class Reader(Protocol):
    """What the hub needs of a connection: a write that never waits, and a close."""

    form: Form

    def write(self, data: bytes | str) -> bool:
        """Queue data without waiting; False (and the reader closed) when over its limit."""

    def close(self, code: CloseCode, reason: str) -> None: ...

    async def wait_writable(self) -> bool:
        """Wait until the buffer has room again; False if the reader was closed meanwhile."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where this process stands on one blog: which following of it, at which seq.

    Two positions are equal only within one following: a blog loaded again (recreated
    under its slug, or after the hub forgot it) starts a new one.
    """

    following: int
    blog_id: int
    seq: int


@dataclass(eq=False)
class Channel:
    slug: str
    blog_id: int
    last_seq: int
    tail: deque[Outgoing]
    readers: dict[Form, dict[int, Reader]] = field(
        default_factory=lambda: {form: {} for form in Form}
    )
    # The highest seq known to exist; above last_seq means a gap to fill from the log.
    wanted: int = 0
    # The highest seq committed by this process: known before its fan-out has run.
    committed: int = 0
    filler: asyncio.Task[None] | None = None
    # Announcements that arrived ahead of a missing seq, by seq.
    early: dict[int, bytes] = field(default_factory=dict)
    idle_since: float = field(default_factory=time.monotonic)
    following: int = field(default_factory=lambda: next(_followings))

    def position(self) -> Position:
        return Position(self.following, self.blog_id, max(self.last_seq, self.committed))

    def reader_count(self) -> int:
        return sum(len(group) for group in self.readers.values())

    def all_readers(self) -> list[Reader]:
        return [reader for group in self.readers.values() for reader in group.values()]

    def tail_from(self, since: int) -> list[Outgoing] | None:
        """The events after `since` from memory, or None when memory does not reach back."""
        if since >= self.last_seq:
            return []
        if not self.tail or self.tail[0].seq > since + 1:
            return None
        return [event for event in self.tail if event.seq > since]
