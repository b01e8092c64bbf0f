"""Readers now, and delivery receipts, summed over every process.

Each process counts what its hub already holds: the open public streams of each blog it
follows (WebSocket and SSE, either edge) and, for the blog's last events, how many of the
streams open at fan-out have been written the event (app/realtime/channel.py, `Receipt`).
Every `period` seconds it publishes those counts on a broker topic of its own; every
process keeps the last report of each other process and sums them with its own live
counts. A process that stops reporting (stopped, or cut off from the broker) drops out
after `EXPIRY_PERIODS` periods. Nothing here runs per connection or per event: a report
reads the channels' counters, and the hub's delivery path is unchanged but for counting.

The peak of the day is kept per blog for the blog's own day (its time zone), with the
moment it was reached; reports carry it, so a process started later learns the day's peak
from the others. Counts can lag by up to a period, and a lost report (Redis pub/sub is
at-most-once) leaves the previous one in use until it expires.
"""

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.realtime.broker import Announcement, Broker
from app.realtime.channel import Channel
from app.realtime.hub import Hub
from app.supervision import supervise

logger = logging.getLogger("bulletin.audience")

EXPIRY_PERIODS = 3
# A PostgreSQL NOTIFY carries at most 8000 bytes: reports are split below that.
MAX_REPORT_BYTES = 6000


@dataclass(slots=True)
class Peak:
    day: str  # the blog's local date, ISO
    readers: int
    at: datetime


@dataclass(slots=True)
class BlogCounts:
    """One process's counts for one blog, as its last report (or its live hub) says."""

    blog_id: int
    timezone: str
    readers: int
    # seq -> (type, entry_id, open, delivered)
    receipts: dict[int, tuple[str, int | None, int, int]]
    peak: Peak | None
    # The last seq the process fanned out to its readers of the blog.
    delivered_seq: int = 0
    received: float = field(default_factory=time.monotonic)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class ReceiptTotal:
    seq: int
    type: str
    entry_id: int | None
    open: int
    delivered: int


@dataclass(frozen=True, slots=True)
class Readers:
    now: int
    peak_today: int
    peak_at: datetime | None
    processes: int
    as_of: datetime
    recent_events: list[ReceiptTotal]


def local_day(moment: datetime, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).date().isoformat()


def channel_counts(channel: Channel) -> BlogCounts:
    return BlogCounts(
        blog_id=channel.blog_id,
        timezone=channel.timezone,
        readers=channel.public_count(),
        receipts={
            receipt.seq: (receipt.event_type, receipt.entry_id, receipt.open, receipt.delivered)
            for receipt in channel.receipts
        },
        peak=None,
        delivered_seq=channel.last_seq,
    )


class Audience:
    def __init__(self, hub: Hub, broker: Broker, *, period: float = 5.0) -> None:
        self.hub = hub
        self.broker = broker
        self.period = period
        # Tells this process's own reports, echoed by the broker, from the others'.
        self.origin = secrets.token_hex(8)
        # process -> slug -> its last report of that blog
        self._peers: dict[str, dict[str, BlogCounts]] = {}
        self._heard: dict[str, float] = {}
        self._peaks: dict[str, Peak] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.broker.connect()
        self._tasks = [
            asyncio.create_task(
                supervise(f"audience {name}", run, restart_when_done=True), name=f"audience-{name}"
            )
            for name, run in (("listener", self._listen), ("reporter", self._report))
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.broker.disconnect()

    # --- reports out and in ----------------------------------------------------

    def reports(self) -> list[bytes]:
        """This process's counts as report payloads, each small enough for any broker."""
        parts: list[bytes] = []
        blogs: dict[str, object] = {}
        size = 0
        for channel in self.hub.channels():
            counts = channel_counts(channel)
            peak = self._update_peak(channel.slug, counts.timezone, datetime.now(UTC))
            encoded = {
                "id": counts.blog_id,
                "tz": counts.timezone,
                "n": counts.readers,
                "r": [[seq, *rest] for seq, rest in counts.receipts.items()],
                "p": [peak.day, peak.readers, peak.at.isoformat()] if peak else None,
                "s": counts.delivered_seq,
            }
            length = len(json.dumps(encoded)) + len(channel.slug) + 8
            if blogs and size + length > MAX_REPORT_BYTES:
                parts.append(json.dumps(blogs).encode())
                blogs, size = {}, 0
            blogs[channel.slug] = encoded
            size += length
        parts.append(json.dumps(blogs).encode())  # an empty one still says "alive"
        return parts

    async def _report(self) -> None:
        while True:
            for number, payload in enumerate(self.reports()):
                await self.broker.publish(Announcement(self.origin, 0, number, payload))
            self._forget_silent(time.monotonic())
            await asyncio.sleep(self.period)

    async def _listen(self) -> None:
        async with self.broker.subscribe() as announcements:
            async for announcement in announcements:
                if announcement.blog != self.origin and announcement.payload:
                    try:
                        self.receive(announcement.blog, json.loads(announcement.payload))
                    except (ValueError, TypeError, KeyError, IndexError) as error:
                        logger.warning("dropped a readers report it could not read: %s", error)

    def receive(self, process: str, blogs: dict[str, dict[str, Any]]) -> None:
        now = time.monotonic()
        self._heard[process] = now
        known = self._peers.setdefault(process, {})
        for slug, encoded in blogs.items():
            peak = encoded["p"]
            counts = BlogCounts(
                blog_id=int(encoded["id"]),
                timezone=str(encoded["tz"]),
                readers=int(encoded["n"]),
                receipts={
                    int(seq): (str(kind), entry_id, int(open_), int(delivered))
                    for seq, kind, entry_id, open_, delivered in encoded["r"]
                },
                peak=Peak(peak[0], int(peak[1]), datetime.fromisoformat(peak[2])) if peak else None,
                delivered_seq=int(encoded.get("s", 0)),  # absent from older processes' reports
                received=now,
            )
            known[slug] = counts
            if counts.peak is not None:
                self._adopt_peak(slug, counts.peak)

    def _forget_silent(self, now: float) -> None:
        expiry = self.period * EXPIRY_PERIODS
        for process, heard in list(self._heard.items()):
            if now - heard > expiry:
                del self._heard[process]
                self._peers.pop(process, None)

    # --- sums ----------------------------------------------------------------------

    def _fresh(self, slug: str, blog_id: int) -> list[BlogCounts]:
        """Every process's counts for the blog: this one's live, the others' last reports."""
        now = time.monotonic()
        expiry = self.period * EXPIRY_PERIODS
        found = [
            counts
            for blogs in self._peers.values()
            if (counts := blogs.get(slug)) is not None
            and counts.blog_id == blog_id
            and now - counts.received <= expiry
        ]
        channel = self.hub.channel(slug)
        if channel is not None and channel.blog_id == blog_id:
            found.append(channel_counts(channel))
        return found

    def slowest_delivery(self, slug: str, blog_id: int) -> int | None:
        """The lowest seq any process with readers of the blog has fanned out to them (None
        when no process has any): the head minus this is how far behind its readers are."""
        return min(
            (counts.delivered_seq for counts in self._fresh(slug, blog_id) if counts.readers),
            default=None,
        )

    def _sum(self, slug: str, blog_id: int) -> int:
        return sum(counts.readers for counts in self._fresh(slug, blog_id))

    def _adopt_peak(self, slug: str, peak: Peak) -> None:
        mine = self._peaks.get(slug)
        if (
            mine is None
            or peak.day > mine.day
            or (peak.day == mine.day and peak.readers > mine.readers)
        ):
            self._peaks[slug] = peak

    def _update_peak(self, slug: str, timezone: str, moment: datetime) -> Peak | None:
        """The day's peak, raised to the sum now if that is higher (or a new day began)."""
        channel = self.hub.channel(slug)
        total = self._sum(slug, channel.blog_id) if channel is not None else 0
        self._adopt_peak(slug, Peak(local_day(moment, timezone), total, moment))
        return self._peaks.get(slug)

    def readers(self, slug: str, blog_id: int, timezone: str) -> Readers:
        """The blog's readers now over every process that reports, and its receipts."""
        moment = datetime.now(UTC)
        found = self._fresh(slug, blog_id)
        total = sum(counts.readers for counts in found)
        today = local_day(moment, timezone)
        self._adopt_peak(slug, Peak(today, total, moment))
        peak = self._peaks[slug]
        if peak.day != today:
            peak = Peak(today, total, moment)
        receipts: dict[int, list[Any]] = {}
        for counts in found:
            for seq, (kind, entry_id, open_, delivered) in counts.receipts.items():
                summed = receipts.setdefault(seq, [kind, entry_id, 0, 0])
                summed[2] += open_
                summed[3] += delivered
        recent = [
            ReceiptTotal(seq, kind, entry_id, open_, delivered)
            for seq, (kind, entry_id, open_, delivered) in sorted(receipts.items())
        ][-20:]
        expiry = self.period * EXPIRY_PERIODS
        now = time.monotonic()
        processes = 1 + sum(1 for heard in self._heard.values() if now - heard <= expiry)
        oldest = min((counts.at for counts in found), default=moment)
        return Readers(total, peak.readers, peak.at, processes, oldest, recent)
