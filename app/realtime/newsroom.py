"""The newsroom's private channel: what a blog's members see live and the public never does.

A private entry (draft, submitted, returned) changes without entering the change log, so
the public hub never hears of it. The write path (app/publishing.py) hands each such change
here instead, as a `PrivateNote`: the entry as it stands now (its review note included), its
rendering, and who wrote it. Each process delivers a note to the newsroom readers of that
blog it holds, and tells the other processes through a broker of its own topic (a channel
apart from the change log's, sealed with the same key): nothing here ever reaches the
public hub, the log, a feed, a webhook or the memory of answers.

A note's type says where the entry now stands, so any copy of it can be applied as it comes:
`entry.draft_saved` (a draft written or edited, a submission withdrawn, a published entry
taken back), `entry.submitted`, `entry.returned`, `entry.scheduled` (a held or scheduled
publish waiting for its `publish_at`, or rescheduled; an undo is the note of the state it
went back to; its going out is its public `entry.created`) and `entry.discarded` (a private
entry deleted: a tombstone), with `previous_status` naming the state it left (null for a new one).
A contributor's reader gets the notes of its own entries only; an editor's, all of them.

Notes are live only: there is no private log and no private seq. They may be lost (Redis
pub/sub is at-most-once) or, on the PostgreSQL broker, repeated: a note too large for a
NOTIFY travels as a doorbell naming the entry, and each process reads the entry and sends
it as it stands (its own readers get it twice; `version` tells a copy from a change). A
client that (re)connects reads the private lists (`GET .../entries?status=...`) once the
stream says `newsroom.hello`, and from then applies notes by entry id and `version`.

Presence ("who is editing", app/presence.py) travels here too: `entry.editing` notes, for
every member reader of a blog (contributors included), through `announce` and the same
broker topic; they are live only as well, and a (re)connecting client reads the live flags
(`GET .../editing`) after `newsroom.hello`.
"""

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from app.db import Database
from app.models import Blog, Entry
from app.people.permissions import PRIVATE_STATES
from app.queries import to_entry_public
from app.realtime.broker import Announcement, Broker
from app.realtime.channel import Reader
from app.realtime.frames import DIRECT_FORMS, Form, websocket_text_frame
from app.rendering import Renderer
from app.schemas import EntryPublic, EntryTombstone, UtcDatetime
from app.supervision import supervise

logger = logging.getLogger("bulletin.newsroom")

NoteType = Literal[
    "entry.draft_saved", "entry.submitted", "entry.returned", "entry.scheduled", "entry.discarded"
]
# The type of a note, by the state its entry is now in.
NOTE_TYPES: dict[str, NoteType] = {
    "draft": "entry.draft_saved",
    "submitted": "entry.submitted",
    "returned": "entry.returned",
    # A held or scheduled publish, waiting: its entry carries `publish_at`.
    "scheduled": "entry.scheduled",
    "deleted": "entry.discarded",
}
OUTBOX_LIMIT = 10_000


class PrivateEvent(BaseModel):
    """A private change of an entry, as newsroom readers get it (never a public event)."""

    type: NoteType
    blog: str = Field(description="The blog's slug.")
    entry: EntryPublic | EntryTombstone
    html: str | None = Field(None, description="The entry rendered as the reader page would.")
    previous_status: str | None = Field(description="The state it left; null for a new entry.")
    at: UtcDatetime = Field(description="When the change was made.")
    reason: str | None = Field(
        None, description="Why Bulletin made the change itself (a scheduled publish dropped)."
    )


@dataclass(frozen=True, slots=True)
class PrivateNote:
    """One private change on its way to newsroom readers: built once, sent as it is."""

    blog: str
    blog_id: int
    entry_id: int
    # The entry's writer: a contributor's reader gets only the notes of its own entries.
    writer_id: int | None
    type: str
    payload: bytes
    # For every member reader of the blog, whatever it may read of entries (presence).
    everyone: bool = False


def build_note(
    blog: Blog,
    entry: Entry,
    renderer: Renderer,
    previous_status: str | None,
    *,
    reason: str | None = None,
) -> PrivateNote:
    """The note of a private entry as it stands (or of its tombstone, if it was deleted)."""
    if entry.status == "deleted":
        shown: EntryPublic | EntryTombstone = EntryTombstone(
            id=entry.id, blog=blog.slug, deleted_at=entry.deleted_at or entry.updated_at
        )
        html = None
    else:
        shown = to_entry_public(entry, blog.slug)
        html = renderer.render_entry(shown, blog.timezone, language=blog.language)
    event = PrivateEvent(
        type=NOTE_TYPES[entry.status],
        blog=blog.slug,
        entry=shown,
        html=html,
        previous_status=previous_status,
        at=entry.updated_at,
        reason=reason,
    )
    left_out = {"html"} if html is None else set()
    if reason is None:
        left_out.add("reason")
    payload = event.model_dump_json(exclude=left_out or None).encode()
    return PrivateNote(blog.slug, blog.id, entry.id, entry.created_by, event.type, payload)


def hello_payload(slug: str, role: str, own_only: bool) -> bytes:
    """The first private message of a newsroom reader: private notes flow from here on."""
    sees = "own" if own_only else "all"
    return json.dumps(
        {"type": "newsroom.hello", "blog": slug, "role": role, "sees": sees},
        separators=(",", ":"),
    ).encode()


def note_frame(form: Form, event_type: str, payload: bytes) -> bytes | str:
    """A private message in a reader's form. SSE: no `id:`, so that EventSource's
    Last-Event-ID stays the last public seq."""
    if form is Form.SSE:
        return b"event: %s\ndata: %s\n\n" % (event_type.encode(), payload)
    if form in DIRECT_FORMS:
        return websocket_text_frame(payload)
    return payload.decode()


@dataclass(eq=False)
class Watch:
    """One newsroom reader of one blog, and which private notes it gets."""

    reader: Reader
    blog_id: int
    # A contributor's user id (its own entries' notes only), or None for all of them.
    writer_id: int | None

    def sees(self, note: PrivateNote) -> bool:
        return note.everyone or self.writer_id is None or note.writer_id == self.writer_id


class NewsroomHub:
    """This process's newsroom readers, and the broker topic that joins the processes."""

    def __init__(self, database: Database, broker: Broker, renderer: Renderer) -> None:
        self.database = database
        self.broker = broker
        self.renderer = renderer
        # Tells this process's own notes, echoed by the broker, from other processes'.
        self.origin = secrets.token_hex(16).encode()
        self._watches: dict[str, dict[int, Watch]] = {}
        self._outbox: asyncio.Queue[Announcement] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._one_off: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.broker.connect()
        self._tasks = [
            self._supervised("listener", self._listen),
            self._supervised("outbox", self._send_outbox),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._one_off]:
            task.cancel()
        for task in [*self._tasks, *self._one_off]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watches.clear()
        await self.broker.disconnect()

    def _supervised(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        return asyncio.create_task(
            supervise(f"newsroom {name}", run, restart_when_done=True), name=f"newsroom-{name}"
        )

    # --- notes in and out ----------------------------------------------------

    def announce(self, notes: Sequence[PrivateNote]) -> None:
        """Called after a commit: deliver here (after the public events of the same commit,
        which the hub also delivers on the next turn of the loop), and tell the other
        processes. Never waits."""
        loop = asyncio.get_running_loop()
        for note in notes:
            loop.call_soon(self._deliver, note)
            try:
                self._outbox.put_nowait(self._sealable(note))
            except asyncio.QueueFull:
                logger.warning("newsroom outbox full; other processes miss a private note")

    def _sealable(self, note: PrivateNote) -> Announcement:
        # The broker carries a blog, a number and bytes: the entry's id, and the note
        # behind who sent it and whose entry it is.
        writer = b"*" if note.everyone else b"%d" % (note.writer_id or 0)
        envelope = b"%s\n%s\n%s\n%s" % (self.origin, writer, note.type.encode(), note.payload)
        return Announcement(note.blog, note.blog_id, note.entry_id, envelope)

    async def _send_outbox(self) -> None:
        while True:
            await self.broker.publish(await self._outbox.get())

    async def _listen(self) -> None:
        async with self.broker.subscribe() as announcements:
            async for announcement in announcements:
                self.receive(announcement)

    def receive(self, announcement: Announcement) -> None:
        """A note from the broker: from another process, or the doorbell of a large one."""
        if not self._watches.get(announcement.blog):
            return
        if not announcement.payload:
            task = asyncio.create_task(self._read_and_deliver(announcement))
            self._one_off.add(task)
            task.add_done_callback(self._one_off.discard)
            return
        try:
            origin, writer, event_type, payload = announcement.payload.split(b"\n", 3)
            everyone = writer == b"*"
            writer_id = None if everyone else (int(writer) or None)
        except ValueError:
            logger.warning("dropped a malformed newsroom note")
            return
        if origin == self.origin:
            return  # delivered here when it was announced
        note = PrivateNote(
            announcement.blog,
            announcement.blog_id,
            announcement.seq,
            writer_id,
            event_type.decode(),
            payload,
            everyone,
        )
        self._deliver(note)

    async def _read_and_deliver(self, doorbell: Announcement) -> None:
        """The entry a doorbell names, read and sent as it stands, if it is still private."""
        try:
            async with self.database.read_session() as session:
                blog = await session.get(Blog, doorbell.blog_id)
                entry = await session.get(Entry, doorbell.seq)
                if blog is None or entry is None or entry.blog_id != blog.id:
                    return
                if entry.status not in (*PRIVATE_STATES, "deleted"):
                    return  # published since: the public stream says so
                note = build_note(blog, entry, self.renderer, previous_status=None)
        except Exception:
            logger.warning("reading a private note's entry failed", exc_info=True)
            return
        self._deliver(note)

    def _deliver(self, note: PrivateNote) -> None:
        watches = self._watches.get(note.blog)
        if not watches:
            return
        frames: dict[Form, bytes | str] = {}
        refused = []
        for key, watch in watches.items():
            if watch.blog_id != note.blog_id or not watch.sees(note):
                continue
            form = watch.reader.form
            if form not in frames:
                frames[form] = note_frame(form, note.type, note.payload)
            if not watch.reader.write(frames[form]):
                refused.append(key)
        for key in refused:
            del watches[key]

    # --- readers -------------------------------------------------------------

    def watch(
        self, slug: str, blog_id: int, reader: Reader, writer_id: int | None, role: str
    ) -> Watch:
        """Register a newsroom reader of a blog; its first message is `newsroom.hello`."""
        watch = Watch(reader, blog_id, writer_id)
        hello = hello_payload(slug, role, own_only=writer_id is not None)
        if reader.write(note_frame(reader.form, "newsroom.hello", hello)):
            self._watches.setdefault(slug, {})[id(reader)] = watch
        return watch

    def unwatch(self, slug: str, reader: Reader) -> None:
        watches = self._watches.get(slug)
        if watches is not None:
            watches.pop(id(reader), None)
            if not watches:
                del self._watches[slug]

    def reader_count(self) -> int:
        return sum(len(watches) for watches in self._watches.values())
