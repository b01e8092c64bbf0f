"""The write path: the only code that changes blogs and entries and appends to the log.

Every change takes the blog's lock first (a row lock on PostgreSQL, the write
lock on SQLite), so each blog's `seq` is gap-free and strictly increasing even
with concurrent writers, and a change commits together with its event or not
at all. Each event's wire form is built here, once, and stored with it.
"""

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import Conflict, InvalidInput, NotFound
from app.media.references import refuse_images_without_alt_text, resolve_media
from app.models import Blog, Entry, Event, utc_now
from app.queries import find_blog, find_entry, find_in_blog, to_blog_public, to_entry_public
from app.realtime.broker import Announcement
from app.rendering import Renderer
from app.sanitising import sanitise_html
from app.schemas import (
    NOT_BLANK,
    BlogCreate,
    BlogPublic,
    BlogUpdate,
    EntryCreate,
    EntryPublic,
    EntryTombstone,
    EntryUpdate,
    EventPublic,
    EventType,
    is_slug,
)

# Back-filled items may be in the past; a little clock skew is forgiven for "now".
FUTURE_TOLERANCE = timedelta(minutes=1)


# Told about every committed event, in seq order per blog, before the write returns.
# A listener must not wait or fail: it hands the events on (the hub, the webhook worker).
CommitListener = Callable[[Sequence[Announcement]], None]


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


class Publisher:
    """Creates, edits, deletes and pins; appends the numbered event for each change."""

    def __init__(
        self,
        database: Database,
        renderer: Renderer,
        listeners: Sequence[CommitListener] = (),
    ) -> None:
        self.database = database
        self.renderer = renderer
        self.listeners = tuple(listeners)

    def _committed(self, events: Sequence[Announcement]) -> None:
        for listener in self.listeners:
            listener(events)

    # --- blogs -------------------------------------------------------------

    async def create_blog(self, data: BlogCreate) -> BlogPublic:
        try:
            async with self.database.write_session() as session:
                if await session.scalar(select(Blog.id).where(Blog.slug == data.slug)):
                    raise Conflict(f"A blog with the slug '{data.slug}' exists already.")
                now = utc_now()
                blog = Blog(
                    slug=data.slug,
                    title=data.title,
                    summary_html=sanitise_html(data.summary),
                    status=data.status,
                    timezone=data.timezone,
                    coverage_start=data.coverage_start or now,
                    coverage_end=data.coverage_end or (now if data.status == "ended" else None),
                    topics=data.topics,
                    previous_blog_id=await _previous_blog_id(session, data.previous_slug),
                    require_alt_text=data.require_alt_text,
                    head_seq=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(blog)
                await session.flush()
                return await to_blog_public(session, blog)
        except IntegrityError as error:
            # Two requests raced for the same slug; the loser gets the same answer.
            raise Conflict(f"A blog with the slug '{data.slug}' exists already.") from error

    async def update_blog(self, slug: str, data: BlogUpdate) -> BlogPublic:
        changes = data.model_dump(exclude_unset=True)
        _refuse_nulls(changes, nullable={"coverage_end", "previous_slug"})
        committed: list[Announcement] = []
        async with self.database.write_session() as session:
            blog = await _lock_blog(session, slug)
            was_ended = blog.status == "ended"
            if "previous_slug" in changes:
                if changes["previous_slug"] == slug:
                    raise InvalidInput(
                        "A blog cannot continue itself.",
                        fields={"previous_slug": "must name another blog"},
                    )
                changes["previous_blog_id"] = await _previous_blog_id(
                    session, changes.pop("previous_slug")
                )
            if "summary" in changes:
                changes["summary_html"] = sanitise_html(changes.pop("summary"))
            if changes.get("status") == "ended" and not was_ended:
                changes.setdefault("coverage_end", blog.coverage_end or utc_now())
            if changes.get("status") == "live" and was_ended:
                changes.setdefault("coverage_end", None)
            changed = {k: v for k, v in changes.items() if getattr(blog, k) != v}
            if changed:
                for name, value in changed.items():
                    setattr(blog, name, value)
                blog.updated_at = utc_now()
                event_type: EventType = (
                    "blog.ended" if blog.status == "ended" and not was_ended else "blog.updated"
                )
                seq = _next_seq(blog)
                details = await to_blog_public(session, blog)
                event = EventPublic(seq=seq, type=event_type, blog=slug, details=details)
                committed.append(_store_event(session, blog, event))
            public = await to_blog_public(session, blog)
        self._committed(committed)
        return public

    # --- entries -----------------------------------------------------------

    async def create_entry(
        self, slug: str, data: EntryCreate, idempotency_key: str | None = None
    ) -> tuple[EntryPublic, bool]:
        """Store a new entry; returns it and whether this was a replay of an earlier request."""
        fingerprint = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
        committed: list[Announcement] = []
        async with self.database.write_session() as session:
            blog = await _lock_blog(session, slug)
            if idempotency_key is not None:
                earlier = await session.scalar(
                    select(Entry).where(
                        Entry.blog_id == blog.id, Entry.idempotency_key == idempotency_key
                    )
                )
                if earlier is not None:
                    if earlier.request_fingerprint != fingerprint:
                        raise IdempotencyKeyReused(
                            "This Idempotency-Key was used for a different request."
                        )
                    if earlier.idempotent_answer is None:  # stored before migration 0005
                        return to_entry_public(earlier, slug), True
                    return EntryPublic.model_validate_json(earlier.idempotent_answer), True
            now = utc_now()
            published_at = data.published_at or now
            _refuse_future(published_at, now)
            if data.pinned and data.status != "published":
                raise InvalidInput(
                    "Only a published entry can be pinned.", fields={"pinned": "publish it first"}
                )
            if data.pinned:
                committed += await self._unpin_current(session, blog, now)
            body_html = sanitise_html(data.body)
            if not (data.headline or NOT_BLANK.search(body_html) or data.media):
                raise InvalidInput("An entry needs a headline, a body or media.")
            media = await resolve_media(session, blog, data.media)
            if data.status == "published":
                refuse_images_without_alt_text(blog, media)
            entry = Entry(
                blog_id=blog.id,
                headline=data.headline or None,
                body_html=body_html,
                authors=[author.model_dump(exclude_none=True) for author in data.authors],
                media=media,
                key_event=data.key_event,
                pinned=data.pinned,
                status=data.status,
                published_at=published_at,
                created_at=now,
                updated_at=now,
                version=1,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint if idempotency_key else None,
            )
            session.add(entry)
            await session.flush()
            if entry.status == "published":
                committed.append(self._entry_event(session, blog, "entry.created", entry))
            public = to_entry_public(entry, slug)
            if idempotency_key is not None:
                entry.idempotent_answer = public.model_dump_json()
        self._committed(committed)
        return public, False

    async def update_entry(self, slug: str, entry_id: int, data: EntryUpdate) -> EntryPublic:
        changes = data.model_dump(exclude_unset=True)
        redact = changes.pop("redact", False)
        _refuse_nulls(changes, nullable={"headline"})
        committed: list[Announcement] = []
        async with self.database.write_session() as session:
            blog = await _lock_blog(session, slug)
            entry = await find_entry(session, blog, entry_id, include_drafts=True)
            values = _entry_values(changes)
            if "media" in values:
                items = data.media if isinstance(data.media, list) else []
                values["media"] = await resolve_media(session, blog, items)
            changed = {k: v for k, v in values.items() if getattr(entry, k) != v}
            if not changed:
                if redact and entry.status == "published":
                    committed += await self._redact(session, blog, entry)
                    public = to_entry_public(entry, slug)
                    self._committed(committed)
                    return public
                return to_entry_public(entry, slug)

            now = utc_now()
            was_public, was_pinned = entry.status == "published", entry.pinned
            new_status = changed.get("status", entry.status)
            wants_pin = changed.pop("pinned", entry.pinned)
            if wants_pin and new_status != "published":
                if changes.get("pinned") and "status" in changes:
                    raise InvalidInput(
                        "Only a published entry can be pinned.",
                        fields={"pinned": "publish it first"},
                    )
                if changes.get("pinned"):
                    # The request is sound; the entry's stored state is what refuses it.
                    raise Conflict("Only a published entry can be pinned: this one is a draft.")
                wants_pin = False  # taking an entry back to draft unpins it
            if "published_at" in changed:
                _refuse_future(changed["published_at"], now)
            for name, value in changed.items():
                setattr(entry, name, value)
            if not (entry.headline or NOT_BLANK.search(entry.body_html) or entry.media):
                raise InvalidInput("An entry needs a headline, a body or media.")
            if entry.status == "published" and ("media" in changed or not was_public):
                refuse_images_without_alt_text(blog, entry.media)
            if wants_pin and not was_pinned:
                committed += await self._unpin_current(session, blog, now)
            entry.pinned = wants_pin
            entry.version += 1
            entry.updated_at = now
            await session.flush()

            is_public = entry.status == "published"
            if was_public and not is_public:
                committed.append(self._tombstone_event(session, blog, entry, now))
                # Back to draft: what it said is no longer public, in the log either.
                committed += await self._redact(session, blog, entry)
            elif is_public:
                event_type: EventType = "entry.created" if not was_public else "entry.updated"
                if was_public and entry.pinned != was_pinned:
                    event_type = "entry.pinned" if entry.pinned else "entry.unpinned"
                committed.append(self._entry_event(session, blog, event_type, entry))
                if redact:
                    committed += await self._redact(session, blog, entry)
            public = to_entry_public(entry, slug)
        self._committed(committed)
        return public

    async def delete_entry(self, slug: str, entry_id: int) -> None:
        """Tombstone an entry. Deleting it again changes nothing and succeeds."""
        committed: list[Announcement] = []
        async with self.database.write_session() as session:
            blog = await _lock_blog(session, slug)
            entry = await find_in_blog(session, Entry, blog, entry_id, what="entry")
            if entry.status == "deleted":
                return
            was_public = entry.status == "published"
            now = utc_now()
            entry.status = "deleted"
            entry.pinned = False
            entry.deleted_at = now
            entry.updated_at = now
            entry.version += 1
            if was_public:
                committed.append(self._tombstone_event(session, blog, entry, now))
                committed += await self._redact(session, blog, entry)
        self._committed(committed)

    # --- redactions ----------------------------------------------------------

    async def _redact(self, session: AsyncSession, blog: Blog, entry: Entry) -> list[Announcement]:
        """Rewrite the entry's earlier events to what is public now — its tombstone, or its
        current version — keeping their seq and type, then log `entry.redacted` naming them.

        Runs in the transaction of the change that made it necessary, after that change's
        own event, so the log never shows a state in between.
        """
        await session.flush()
        rows = (
            await session.execute(
                select(Event).where(
                    Event.blog_id == blog.id,
                    Event.entry_id == entry.id,
                    Event.seq < blog.head_seq,
                    Event.type != "entry.redacted",
                )
            )
        ).scalars()
        current = self._public_forms(blog, entry)
        rewritten = []
        for stored in rows:
            earlier = EventPublic.model_validate_json(stored.payload)
            if isinstance(earlier.entry, EntryTombstone):
                continue  # a tombstone says nothing that needs taking back
            forms = current if entry.status == "published" else _tombstone_forms(blog, entry)
            stored.payload = _wire_bytes(earlier.model_copy(update=forms))
            rewritten.append(stored.seq)
        if not rewritten:
            return []
        event = EventPublic(
            seq=_next_seq(blog),
            type="entry.redacted",
            blog=blog.slug,
            entry=EntryTombstone(id=entry.id, blog=blog.slug, deleted_at=entry.updated_at)
            if entry.status != "published"
            else to_entry_public(entry, blog.slug),
            redacted_seqs=sorted(rewritten),
        )
        return [_store_event(session, blog, event, entry_id=entry.id)]

    def _public_forms(self, blog: Blog, entry: Entry) -> dict[str, Any]:
        """The entry as every public event of it shows it now."""
        public = to_entry_public(entry, blog.slug)
        return {
            "entry": public,
            "html": self.renderer.render_entry(public, blog.timezone),
            "key_event_html": self.renderer.render_key_event(public, blog.timezone)
            if public.key_event
            else None,
        }

    # --- events ------------------------------------------------------------

    async def _unpin_current(
        self, session: AsyncSession, blog: Blog, now: datetime
    ) -> list[Announcement]:
        current = await session.scalar(
            select(Entry).where(Entry.blog_id == blog.id, Entry.pinned.is_(True))
        )
        if current is None:
            return []
        current.pinned = False
        current.version += 1
        current.updated_at = now
        # Flush now: the database allows one pinned entry per blog at any moment.
        await session.flush()
        if current.status != "published":
            return []
        return [self._entry_event(session, blog, "entry.unpinned", current)]

    def _entry_event(
        self, session: AsyncSession, blog: Blog, event_type: EventType, entry: Entry
    ) -> Announcement:
        public = to_entry_public(entry, blog.slug)
        event = EventPublic(
            seq=_next_seq(blog),
            type=event_type,
            blog=blog.slug,
            entry=public,
            html=self.renderer.render_entry(public, blog.timezone),
            key_event_html=self.renderer.render_key_event(public, blog.timezone)
            if public.key_event
            else None,
        )
        return _store_event(session, blog, event, entry_id=entry.id)

    def _tombstone_event(
        self, session: AsyncSession, blog: Blog, entry: Entry, now: datetime
    ) -> Announcement:
        tombstone = EntryTombstone(id=entry.id, blog=blog.slug, deleted_at=now)
        event = EventPublic(
            seq=_next_seq(blog), type="entry.deleted", blog=blog.slug, entry=tombstone
        )
        return _store_event(session, blog, event, entry_id=entry.id)


async def _lock_blog(session: AsyncSession, slug: str) -> Blog:
    """Load the blog for writing, holding its lock until the transaction ends."""
    if not is_slug(slug):
        raise NotFound(f"There is no blog '{slug}'.")
    blog = await session.scalar(select(Blog).where(Blog.slug == slug).with_for_update())
    if blog is None:
        raise NotFound(f"There is no blog '{slug}'.")
    return blog


def _next_seq(blog: Blog) -> int:
    # Safe as a read-modify-write: the caller holds the blog's lock.
    blog.head_seq += 1
    return blog.head_seq


def _tombstone_forms(blog: Blog, entry: Entry) -> dict[str, Any]:
    """What an earlier event of an entry out of public view still shows: its tombstone."""
    deleted_at = entry.deleted_at or entry.updated_at
    return {
        "entry": EntryTombstone(id=entry.id, blog=blog.slug, deleted_at=deleted_at),
        "html": None,
        "key_event_html": None,
    }


def _wire_bytes(event: EventPublic) -> bytes:
    """An event's wire form: its fields, less the optional ones it does not carry."""
    optional = ("entry", "html", "key_event_html", "details", "redacted_seqs")
    absent = {name for name in optional if getattr(event, name) is None}
    return event.model_dump_json(exclude=absent).encode()


def _store_event(
    session: AsyncSession, blog: Blog, event: EventPublic, entry_id: int | None = None
) -> Announcement:
    payload = _wire_bytes(event)
    session.add(
        Event(blog_id=blog.id, seq=event.seq, type=event.type, entry_id=entry_id, payload=payload)
    )
    return Announcement(blog=blog.slug, blog_id=blog.id, seq=event.seq, payload=payload)


async def _previous_blog_id(session: AsyncSession, previous_slug: str | None) -> int | None:
    if previous_slug is None:
        return None
    try:
        return (await find_blog(session, previous_slug)).id
    except NotFound as error:
        raise InvalidInput(
            f"There is no blog '{previous_slug}' to continue.",
            fields={"previous_slug": "no such blog"},
        ) from error


def _refuse_nulls(changes: dict[str, Any], *, nullable: set[str]) -> None:
    nulls = {
        name: "may not be null" for name, v in changes.items() if v is None and name not in nullable
    }
    if nulls:
        raise InvalidInput("Some fields may not be null.", fields=nulls)


def _refuse_future(published_at: datetime, now: datetime) -> None:
    if published_at > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            "published_at may not be in the future.",
            fields={"published_at": "must not be later than now"},
        )


def _entry_values(changes: dict[str, Any]) -> dict[str, Any]:
    """Map an EntryUpdate's fields to stored columns, sanitised."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "body":
            values["body_html"] = sanitise_html(value)
        elif name == "headline":
            values["headline"] = value or None
        elif name == "authors":
            values["authors"] = [{k: v for k, v in a.items() if v is not None} for a in value]
        else:
            values[name] = value
    return values
