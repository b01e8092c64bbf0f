"""Per-process fan-out: every reader of a blog gets every event once, in seq order.

The hub keeps one channel per blog with readers: the last seq delivered, a
bounded tail of recent events (so resumes are served from memory) and the
readers, grouped by the wire form they take. An event is framed once and the
same bytes are written to every reader; a write never waits, and a reader whose
buffer is full is closed with RESUME and comes back later with its last seq.

Announcements may arrive late, twice or never. A seq already delivered is
dropped; a jump fills the gap from the database first; a periodic check of
the blogs' heads catches a lost final message.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from app.db import Database, is_outage
from app.errors import NotFound, SinceAheadOfHead, Unavailable
from app.logs import current_request_id
from app.metrics import Metrics
from app.queries import blog_heads, event_payloads_since, find_blog, latest_event_payloads
from app.realtime.broker import Announcement, Broker
from app.realtime.channel import Channel, Position, Reader, Receipt, Tail
from app.realtime.codes import CloseCode
from app.realtime.frames import (
    DIRECT_FORMS,
    Form,
    Heartbeat,
    Outgoing,
    hello_frame,
    replay_frame,
)
from app.supervision import supervise

logger = logging.getLogger("bulletin.hub")

REPLAY_BATCH = 200
# Resumes of one blog ahead of this process within this long share one read of its head.
HEAD_SHARED_SECONDS = 0.1
# How long an out-of-order announcement waits for the one before it before the log is read.
REORDER_GRACE_SECONDS = 0.05
MAX_EARLY = 1000


def follows_many(reader: Reader) -> bool:
    """Whether the reader's connection follows several blogs (app/realtime/multiplex.py): its
    hello and heartbeats then name their blog, as events always do."""
    return getattr(reader, "follows_many", False)


class CatchUpFailed(Unavailable):
    """The process could not read the log up to a reader's resume point (database trouble)."""

    code = "catching_up"


# How long a refused reader of a blog whose streams are stopped is asked to wait.
STOPPED_RETRY_AFTER_SECONDS = 30
STOPPED_REASON = "this blog's live updates are paused; try again later"


class StreamsStopped(Unavailable):
    """An operator stopped the blog's streams (app/stopping.py): come back later."""

    code = "streams_stopped"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(STOPPED_RETRY_AFTER_SECONDS)}


class Hub:
    def __init__(
        self,
        database: Database,
        broker: Broker,
        metrics: Metrics,
        *,
        tail_size: int = 256,
        tail_bytes: int = 1024 * 1024,
        max_unread_channels: int = 100,
        check_interval: float = 2.0,
        heartbeat_interval: float = 15.0,
        idle_channel_seconds: float = 600.0,
        forget_answers: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.broker = broker
        self.metrics = metrics
        self.tail_size = tail_size
        self.tail_bytes = tail_bytes
        self.max_unread_channels = max_unread_channels
        self.check_interval = check_interval
        self.heartbeat_interval = heartbeat_interval
        self.idle_channel_seconds = idle_channel_seconds
        self.forget_answers = forget_answers
        # What its readers' message budgets refill by (app/realtime/multiplex.py).
        self.clock = clock
        self._channels: dict[str, Channel] = {}
        self._loading: dict[str, asyncio.Future[Channel]] = {}
        self._outbox: asyncio.Queue[Announcement] = asyncio.Queue(maxsize=10_000)
        self._tasks: list[asyncio.Task[None]] = []
        self._one_off: set[asyncio.Task[None]] = set()
        for form in Form:
            metrics.readers.labels(form=form.value).set_function(partial(self._reader_count, form))
        metrics.channels.set_function(lambda: len(self._channels))
        metrics.blog_readers.source = self._blog_reader_counts
        self._subscribed_before = False
        # Kill-switch turns made in this process (set_streams_stopped), for check_heads.
        self._switch_turns = 0

    def _reader_count(self, form: Form) -> int:
        """Open connections: one that follows several blogs is in several channels, once."""
        return len({key for channel in self._channels.values() for key in channel.readers[form]})

    def _blog_reader_counts(self) -> list[tuple[str, int]]:
        return [(slug, channel.reader_count()) for slug, channel in self._channels.items()]

    # --- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        await self.broker.connect()
        self._tasks = [
            self._supervised("listener", self._listen),
            self._supervised("outbox", self._send_outbox),
            self._supervised("checker", self._check, broker=False),
            # Its own loop: streams stay alive (and say so) while the database is away.
            self._supervised("heartbeat", self._beat, broker=False),
        ]

    def close_readers(self, reason: str = "server restarting") -> None:
        """Close every reader with SERVICE_RESTART (they resume elsewhere or after the
        restart): the first step of a shutdown, before the server waits for connections."""
        for channel in self._channels.values():
            for reader in channel.all_readers():
                reader.close(CloseCode.SERVICE_RESTART, reason)
            for group in channel.readers.values():
                group.clear()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for channel in self._channels.values():
            if channel.filler is not None:
                channel.filler.cancel()
        self.close_readers()
        self._channels.clear()
        await self.broker.disconnect()

    def _supervised(
        self, name: str, run: Callable[[], Awaitable[None]], *, broker: bool = True
    ) -> asyncio.Task[None]:
        task = supervise(
            f"hub {name}",
            run,
            restart_when_done=True,
            on_failure=self.metrics.broker_failures.inc if broker else None,
            # Announcements may have been lost meanwhile: compare with the log now.
            after_pause=self._check_soon,
        )
        return asyncio.create_task(task, name=f"hub-{name}")

    # --- announcements in and out --------------------------------------------

    def announce(self, events: Sequence[Announcement]) -> None:
        """Called after a commit: deliver here at once, and tell the other processes.

        Never waits for readers or the broker: the request that published returns now.
        The channel's position moves before this returns, so a read that follows the
        commit is never answered from a memory of the blog before it; the fan-out runs
        as soon as the publishing request yields the loop.
        """
        loop = asyncio.get_running_loop()
        committed_at = time.time()
        request_id = current_request_id()
        for committed in events:
            # Stamped for the other processes: their latency metric and their log lines.
            event = dataclasses.replace(committed, committed_at=committed_at, request_id=request_id)
            event_type = json.loads(event.payload)["type"] if event.payload else "unknown"
            self.metrics.events_published.labels(type=event_type).inc()
            logger.info(
                "committed %s seq %d (%s)",
                event.blog,
                event.seq,
                event_type,
                extra={"blog": event.blog, "seq": event.seq, "event_type": event_type},
            )
            channel = self._channels.get(event.blog)
            if channel is not None:
                channel.committed = max(channel.committed, event.seq)
            loop.call_soon(self.receive, event)
            try:
                self._outbox.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("broker outbox full; peers will catch up from the log")

    async def _send_outbox(self) -> None:
        while True:
            event = await self._outbox.get()
            await self.broker.publish(event)

    async def _listen(self) -> None:
        async with self.broker.subscribe() as announcements:
            if self._subscribed_before:
                self.metrics.broker_reconnects.inc()
            self._subscribed_before = True
            # Anything published while we were not subscribed is found by a check now.
            self._check_soon()
            async for announcement in announcements:
                self.receive(announcement)

    def receive(self, announcement: Announcement) -> None:
        channel = self._channels.get(announcement.blog)
        seq = announcement.seq
        # Another blog under this slug (recreated, or a restored database) is not this one.
        if channel is None or channel.blog_id != announcement.blog_id or seq <= channel.last_seq:
            return
        if not announcement.payload:  # a doorbell only: the event is in the log
            self._want(channel, seq)
        elif seq == channel.last_seq + 1:
            self._deliver(channel, Outgoing.build(seq, announcement.payload), announcement)
            # Later events that arrived first (concurrent writers) follow now.
            while channel.early and channel.last_seq + 1 in channel.early:
                next_seq = channel.last_seq + 1
                self._deliver(channel, Outgoing.build(next_seq, channel.early.pop(next_seq)))
        elif len(channel.early) < MAX_EARLY:
            # Usually the missing one is a moment behind; only read the log if it stays missing.
            channel.early[seq] = announcement.payload
            asyncio.get_running_loop().call_later(REORDER_GRACE_SECONDS, self._want, channel, seq)
        else:
            self._want(channel, seq)

    # --- fan-out -------------------------------------------------------------

    def _deliver(
        self, channel: Channel, event: Outgoing, announced: Announcement | None = None
    ) -> None:
        """Write the event to every reader; `announced` (when it came as announced, not
        from the log) times it from its commit and names the request that published it."""
        channel.last_seq = event.seq
        if event.redacts:
            # The tail may hold what was just taken back: resumes read the rewritten log
            # until the tail fills again, and the memory of answers about the blog goes.
            channel.tail.clear()
            channel.replay_read = None
            if self.forget_answers is not None:
                self.forget_answers(channel.slug)
        channel.tail.append(event.seq, event.payload)
        self.metrics.events_delivered.inc()
        receipt = Receipt(event.seq, event.event_type, event.payload, channel.public_count())
        channel.receipts.append(receipt)
        for form, readers in channel.readers.items():
            if not readers:
                continue
            data = event.frame(form)
            if form in DIRECT_FORMS:
                # Written straight to each transport: every write that was taken is delivered.
                receipt.delivered += len(readers) - self._write_all(channel, readers, data)
            else:
                self._write_all(channel, readers, data, receipt)
        if announced is not None and announced.committed_at:
            latency = max(0.0, time.time() - announced.committed_at)
            self.metrics.delivery_latency.observe(latency)
            if logger.isEnabledFor(logging.INFO):  # the line's fields cost a walk of readers
                open_readers = channel.reader_count()
                logger.info(
                    "delivered %s seq %d to %d readers",
                    channel.slug,
                    event.seq,
                    open_readers,
                    extra={
                        "request_id": announced.request_id,
                        "blog": channel.slug,
                        "seq": event.seq,
                        "event_type": event.event_type,
                        "readers": open_readers,
                        "latency_seconds": round(latency, 6),
                    },
                )

    def _write_all(
        self,
        channel: Channel,
        readers: dict[int, Reader],
        data: bytes | str,
        receipt: Receipt | None = None,
    ) -> int:
        """Write to every reader; drop (and count) those that refused, and say how many."""
        if receipt is None:
            refused = [key for key, reader in readers.items() if not reader.write(data)]
        else:
            refused = [key for key, reader in readers.items() if not reader.write(data, receipt)]
        if refused:
            for key in refused:
                del readers[key]
            self.metrics.slow_readers_closed.inc(len(refused))
        return len(refused)

    # --- gaps ----------------------------------------------------------------

    def _want(self, channel: Channel, seq: int) -> None:
        if seq <= channel.last_seq:
            return
        channel.wanted = max(channel.wanted, seq)
        if channel.filler is None or channel.filler.done():
            channel.filler = asyncio.create_task(self._fill(channel), name=f"fill-{channel.slug}")

    async def _fill(self, channel: Channel) -> None:
        self.metrics.gaps_filled.inc()
        try:
            while channel.wanted > channel.last_seq:
                async with self.database.read_session() as session:
                    rows = await event_payloads_since(
                        session, channel.blog_id, channel.last_seq, REPLAY_BATCH
                    )
                if not rows:
                    return
                for seq, payload in rows:
                    if seq == channel.last_seq + 1:
                        self._deliver(channel, Outgoing.build(seq, payload))
                for seq in [seq for seq in channel.early if seq <= channel.last_seq]:
                    del channel.early[seq]
        except Exception as error:
            logger.warning(
                "filling a gap in %s failed; the next check retries: %s",
                channel.slug,
                error,
                exc_info=not is_outage(error),
            )

    def _check_soon(self) -> None:
        task = asyncio.create_task(self._check_quietly(), name="hub-check-now")
        self._one_off.add(task)
        task.add_done_callback(self._one_off.discard)

    async def _check_quietly(self) -> None:
        try:
            await self.check_heads()
        except Exception as error:
            logger.warning(
                "checking heads failed; the periodic check retries: %s",
                error,
                exc_info=not is_outage(error),
            )

    async def _check(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            await self.check_heads()
            self._forget_idle_channels(time.monotonic())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self.send_heartbeats()

    async def check_heads(self) -> None:
        """Compare every channel with its blog's head in the database and fill any gap."""
        if not self._channels:
            return
        by_id = {channel.blog_id: channel for channel in self._channels.values()}
        # A kill switch turned here while the heads are read is newer than what they say.
        turns = self._switch_turns
        async with self.database.read_session() as session:
            heads = await blog_heads(session, list(by_id))
        for blog_id, head in heads.items():
            channel = by_id[blog_id]
            # Another process turned the kill switch: its readers here end now too.
            if self._switch_turns == turns:
                self.set_streams_stopped(channel.slug, head.streams_stopped)
            if channel.reader_count():
                self.metrics.reader_lag_now.observe(max(0, head.seq - channel.last_seq))
            if head.seq > channel.last_seq:
                self._want(channel, head.seq)

    def send_heartbeats(self) -> None:
        for channel in self._channels.values():
            heartbeat = Heartbeat.at(channel.last_seq)
            # A connection that follows several blogs is told which blog each beat is for.
            named = Heartbeat.at(channel.last_seq, channel.slug)
            for form, readers in channel.readers.items():
                if not readers:
                    continue
                plain, tagged = heartbeat.frame(form), named.frame(form)
                refused = [
                    key
                    for key, reader in readers.items()
                    if not reader.write(tagged if follows_many(reader) else plain)
                ]
                if refused:
                    for key in refused:
                        del readers[key]
                    self.metrics.slow_readers_closed.inc(len(refused))

    def _forget_idle_channels(self, now: float) -> None:
        for slug, channel in list(self._channels.items()):
            # A stopped blog stays known: its pages are answered from memory meanwhile.
            if channel.reader_count() or channel.streams_stopped:
                channel.idle_since = now
            elif now - channel.idle_since > self.idle_channel_seconds:
                del self._channels[slug]

    # --- readers ---------------------------------------------------------------

    def position(self, slug: str) -> Position | None:
        """Where this process stands on the blog, if it follows it (nothing is loaded)."""
        channel = self._channels.get(slug)
        return channel.position() if channel is not None else None

    async def follow(self, slug: str) -> Position | None:
        """Follow the blog (loading its head the first time) and say where this process stands;
        None when this process already follows as many blogs without readers as it keeps."""
        if slug not in self._channels and self._unread_channels() >= self.max_unread_channels:
            return None
        return (await self._channel(slug)).position()

    def _unread_channels(self) -> int:
        return sum(1 for channel in self._channels.values() if not channel.reader_count())

    def _new_tail(self, recent: list[tuple[int, bytes]]) -> Tail:
        tail = Tail(self.tail_size, self.tail_bytes)
        for seq, payload in recent:
            tail.append(seq, payload)
        return tail

    def unfollow(self, slug: str) -> None:
        """Forget a blog that has no readers: it is loaded again, as a new following, when asked."""
        channel = self._channels.get(slug)
        if channel is not None and not channel.reader_count():
            del self._channels[slug]

    async def _channel(self, slug: str) -> Channel:
        """The blog's channel, loading its head from the database the first time."""
        channel = self._channels.get(slug)
        if channel is not None:
            return channel
        loading = self._loading.get(slug)
        if loading is None:
            loading = asyncio.get_running_loop().create_future()
            self._loading[slug] = loading
            try:
                self.metrics.catch_up_queries.labels(kind="load").inc()
                async with self.database.read_session() as session:
                    blog = await find_blog(session, slug)
                    # Start warm: after a restart, resuming readers are served from memory.
                    recent = await latest_event_payloads(session, blog.id, self.tail_size)
                last_seq = recent[-1][0] if recent else blog.head_seq
                channel = Channel(
                    slug=slug,
                    blog_id=blog.id,
                    last_seq=last_seq,
                    tail=self._new_tail(recent),
                    wanted=blog.head_seq,
                    timezone=blog.timezone,
                    streams_stopped=blog.streams_stopped,
                )
                if blog.head_seq > last_seq:
                    self._want(channel, blog.head_seq)
                self._channels[slug] = channel
                loading.set_result(channel)
            except asyncio.CancelledError:
                loading.cancel()
                raise
            except Exception as error:
                loading.set_exception(error)  # raised below, to this caller and any waiting
            finally:
                del self._loading[slug]
        return await asyncio.shield(loading)

    async def check_resume(self, slug: str, since: int | None) -> Channel:
        """The blog's channel, if `since` can be served; raises NotFound or SinceAheadOfHead."""
        channel = await self._channel(slug)
        if channel.streams_stopped:
            raise StreamsStopped(f"Blog '{slug}': {STOPPED_REASON}.")
        if since is not None and since > channel.last_seq:
            head = await self._head_for(channel, since)
            if since > head:
                raise SinceAheadOfHead(
                    f"since={since} is ahead of this blog's newest seq {head}; reload."
                )
            # This process is behind the reader: catch up first, or the reader would get
            # the seqs it already has a second time.
            self._want(channel, head)
            if channel.filler is not None:
                await asyncio.shield(channel.filler)
            if since > channel.last_seq:
                raise CatchUpFailed(f"could not catch up with {slug} yet; try again")
        return channel

    async def _head_for(self, channel: Channel, since: int) -> int:
        """The blog's head in the log for a resume at `since`, read once for a storm of them.

        A read that began within HEAD_SHARED_SECONDS serves this resume if it answers at
        least `since`. One that began before this resume may predate its `since` (a reader
        that was just sent a newer event elsewhere): a lower answer is only believed from a
        read that began after this resume arrived.
        """
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        while True:
            lookup = channel.head_lookup
            began = channel.head_lookup_began
            if lookup is None or (lookup.done() and arrived - began > HEAD_SHARED_SECONDS):
                lookup = channel.head_lookup = loop.create_task(self._read_head(channel))
                began = channel.head_lookup_began = loop.time()
            head = await asyncio.shield(lookup)
            if head >= since or began >= arrived:
                return head
            if channel.head_lookup is lookup:  # nobody asked again meanwhile: ask now
                channel.head_lookup = None

    async def _read_head(self, channel: Channel) -> int:
        self.metrics.catch_up_queries.labels(kind="head").inc()
        async with self.database.read_session() as session:
            return (await find_blog(session, channel.slug)).head_seq

    async def attach(self, slug: str, reader: Reader, since: int | None) -> None:
        """Register a reader: first everything after `since`, then live events, no gap, no repeat.

        Without `since` the reader gets a `hello` with the current head, then live events.
        Raises NotFound for an unknown blog and SinceAheadOfHead for a seq the log never had.
        """
        channel = await self.check_resume(slug, since)
        self.metrics.reader_lag.observe(0 if since is None else channel.last_seq - since)
        form = reader.form
        if not getattr(reader, "counted", True):
            channel.uncounted.add(id(reader))
        if since is None:
            blog = slug if follows_many(reader) else None
            if reader.write(hello_frame(form, channel.last_seq, blog)):
                channel.readers[form][id(reader)] = reader
            return
        cursor = since
        while True:
            recent = channel.tail_from(cursor)
            if recent is not None:
                # From here to registration nothing awaits: no event can slip between.
                for seq, payload in recent:
                    if not reader.write(replay_frame(form, payload, seq)):
                        return
                channel.readers[form][id(reader)] = reader
                return
            rows = await self._replay_rows(channel, cursor)
            for seq, payload in rows:
                if seq > channel.last_seq:
                    break  # the channel delivers this one itself
                if not reader.write(replay_frame(form, payload, seq)):
                    return
                cursor = seq
            if not await reader.wait_writable():
                return  # closed while we waited

    async def _replay_rows(self, channel: Channel, cursor: int) -> list[tuple[int, bytes]]:
        """A batch of the log's events after `cursor`, read once for a storm of resumes.

        Readers dropped together resume from about the same seq: the newest read serves
        every resume whose cursor it reaches (it began at or before it and goes past it),
        and only the others read again. The log's events never change but for a redaction,
        which forgets the read (the tail too) as it is delivered.
        """
        shared = channel.replay_read
        if shared is not None and shared[0] <= cursor:
            with contextlib.suppress(Exception):  # a read that failed is read again, below
                rows = await asyncio.shield(shared[1])
                if rows and rows[0][0] <= cursor + 1 <= rows[-1][0]:
                    return [row for row in rows if row[0] > cursor]
        read = asyncio.get_running_loop().create_task(self._read_replay(channel, cursor))
        channel.replay_read = (cursor, read)
        return await asyncio.shield(read)

    async def _read_replay(self, channel: Channel, cursor: int) -> list[tuple[int, bytes]]:
        self.metrics.catch_up_queries.labels(kind="replay").inc()
        async with self.database.read_session() as session:
            return await event_payloads_since(session, channel.blog_id, cursor, REPLAY_BATCH)

    def channel(self, slug: str) -> Channel | None:
        return self._channels.get(slug)

    def streams_stopped(self, slug: str) -> bool:
        """Whether the blog's streams are stopped, as this process knows it (no query)."""
        channel = self._channels.get(slug)
        return channel is not None and channel.streams_stopped

    def set_streams_stopped(self, slug: str, stopped: bool) -> None:
        """Turn the kill switch of a blog this process follows: on, every reader of it here
        is closed with SERVICE_RESTART (they resume by seq once it is off) and no new one
        is attached; off, readers are attached again."""
        channel = self._channels.get(slug)
        if channel is None or channel.streams_stopped == stopped:
            return
        channel.streams_stopped = stopped
        self._switch_turns += 1
        logger.warning(
            "streams of %s %s", slug, "stopped" if stopped else "resumed", extra={"blog": slug}
        )
        if stopped:
            for reader in channel.all_readers():
                reader.close(CloseCode.SERVICE_RESTART, STOPPED_REASON)
            for group in channel.readers.values():
                group.clear()
            channel.uncounted.clear()

    def channels(self) -> list[Channel]:
        """The blogs this process follows, with their readers and recent receipts."""
        return list(self._channels.values())

    def detach(self, slug: str, reader: Reader) -> None:
        channel = self._channels.get(slug)
        if channel is not None:
            channel.readers[reader.form].pop(id(reader), None)
            channel.uncounted.discard(id(reader))


__all__ = ["Form", "Hub", "NotFound", "Position", "Reader", "SinceAheadOfHead", "StreamsStopped"]
