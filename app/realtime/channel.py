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
from app.realtime.frames import Form

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


class Tail:
    """The newest events of a blog kept in memory, as their stored payloads only (a resume
    frames them for its reader), bounded in count and in bytes: a blog of large entries
    keeps fewer of them."""

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events: deque[tuple[int, bytes]] = deque()
        self.bytes = 0

    def append(self, seq: int, payload: bytes) -> None:
        self.events.append((seq, payload))
        self.bytes += len(payload)
        while self.events and (len(self.events) > self.max_events or self.bytes > self.max_bytes):
            self.bytes -= len(self.events.popleft()[1])

    def clear(self) -> None:
        self.events.clear()
        self.bytes = 0

    def after(self, since: int, last_seq: int) -> list[tuple[int, bytes]] | None:
        """The events after `since` from memory, or None when memory does not reach back."""
        if since >= last_seq:
            return []
        if not self.events or self.events[0][0] > since + 1:
            return None
        return [event for event in self.events if event[0] > since]


@dataclass(eq=False)
class Channel:
    slug: str
    blog_id: int
    last_seq: int
    tail: Tail
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

    def tail_from(self, since: int) -> list[tuple[int, bytes]] | None:
        """The events after `since` from memory, or None when memory does not reach back."""
        return self.tail.after(since, self.last_seq)
