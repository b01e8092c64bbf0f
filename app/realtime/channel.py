"""One blog followed by this process: what was delivered, a bounded tail, and the readers.

The hub (app/realtime/hub.py) owns the channels and decides when to deliver; a
channel keeps the state of one blog and the reader interface the hub writes to.
"""

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from app.realtime.codes import CloseCode
from app.realtime.frames import Form

# How many recent events of a blog keep their delivery receipt.
RECEIPTS_KEPT = 20

# Every channel ever loaded in this process gets its own number, never reused.
_followings = itertools.count(1)


class Receipt:
    """How many of the readers open when an event was fanned out have been written it.

    `open` is fixed at fan-out; `delivered` grows as the frame reaches each connection's
    transport: at once for readers the hub writes straight to (Form.WEBSOCKET_FRAME), when
    its own task sends it for a buffered reader. Counted, never listed per connection.
    """

    __slots__ = ("_described", "delivered", "event_type", "open", "payload", "seq")

    def __init__(self, seq: int, event_type: str, payload: bytes, open_readers: int) -> None:
        self.seq = seq
        self.event_type = event_type
        self.payload = payload
        self.open = open_readers
        self.delivered = 0
        self._described: int | None = None

    @property
    def entry_id(self) -> int | None:
        """The event's entry, read from its payload when first asked (never on the hot path)."""
        if self._described is None:
            entry = json.loads(self.payload).get("entry")
            self._described = entry.get("id", 0) if isinstance(entry, dict) else 0
            self.payload = b""
        return self._described or None


class Reader(Protocol):
    """What the hub needs of a connection: a write that never waits, and a close."""

    form: Form

    def write(self, data: bytes | str, receipt: Receipt | None = None) -> bool:
        """Queue data without waiting; False (and the reader closed) when over its limit.
        A buffered reader counts itself on `receipt` once the data has been sent."""

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
    timezone: str = "UTC"
    receipts: deque[Receipt] = field(default_factory=lambda: deque(maxlen=RECEIPTS_KEPT))
    # Readers left out of the count (members' newsroom streams), by key.
    uncounted: set[int] = field(default_factory=set)
    # The operator's kill switch (app/stopping.py): no reader is attached while it is on.
    streams_stopped: bool = False
    # The newest read of the blog's head for resumes, and when it began (loop time).
    head_lookup: "asyncio.Task[int] | None" = None
    head_lookup_began: float = 0.0
    # The newest read of the log for resumes from before the tail: from which seq, and the
    # read (a batch of events after it), shared by every resume it reaches.
    replay_read: "tuple[int, asyncio.Task[list[tuple[int, bytes]]]] | None" = None

    def position(self) -> Position:
        return Position(self.following, self.blog_id, max(self.last_seq, self.committed))

    def reader_count(self) -> int:
        return sum(len(group) for group in self.readers.values())

    def public_count(self) -> int:
        """Readers now: every reader but the uncounted (members' newsroom streams)."""
        return max(0, self.reader_count() - len(self.uncounted))

    def all_readers(self) -> list[Reader]:
        return [reader for group in self.readers.values() for reader in group.values()]

    def tail_from(self, since: int) -> list[tuple[int, bytes]] | None:
        """The events after `since` from memory, or None when memory does not reach back."""
        return self.tail.after(since, self.last_seq)
