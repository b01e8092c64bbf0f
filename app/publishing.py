"""The write path: the only code that changes blogs and entries and appends to the log.

Every change takes the blog's lock first (a row lock on PostgreSQL, the write
lock on SQLite), so each blog's `seq` is gap-free and strictly increasing even
with concurrent writers, and a change commits together with its event or not
at all. Each event's wire form is built here, once, and stored with it.

Every change is made by a `Principal` (app/people/): its permission is checked here,
inside the transaction and before anything is written, against the state it would change
(app/people/permissions.py); its user and token are stored with each event it logs, never
in the event's payload, and the change is recorded in the audit log (app/audit.py) in the
same transaction. Entries move through review here too: draft → submitted → published,
or submitted → returned (with the editor's note) → draft or submitted again. Entries in
those private states never enter the change log: an entry is logged when it is published,
and taking it out of public view logs its tombstone. A publish may be held (the undo window,
`hold_seconds`) or scheduled (`publish_at`): the entry then waits in the private state
`scheduled` until app/scheduling.py publishes it here (`publish_due`), in the transaction
that logs it, or the publish is cancelled (`cancel_publish`) and nothing was ever sent.
Private changes are told, after the commit, to the newsroom's private channel only
(app/realtime/newsroom.py), as notes built here like events are.
"""

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import MISSING
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit, revisions
from app.db import Database, append_row
from app.embeds.resolver import EmbedResolver
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.media.references import refuse_images_without_alt_text, resolve_media
from app.models import Blog, EditingFlag, Entry, EntryTag, Event, User, utc_now
from app.people import permissions
from app.people.principals import for_user
from app.people.roles import SYSTEM, Principal, at_least
from app.people.schemas import BlogSettingsPublic, BlogSettingsUpdate
from app.preconditions import IfMatch, PreconditionFailed, blog_tag, entry_tag
from app.presence import editing_note
from app.queries import find_blog, find_entry, find_in_blog, to_blog_public, to_entry_public
from app.realtime.broker import Announcement
from app.realtime.newsroom import PrivateNote, build_note
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
    Media,
    is_slug,
)

# Back-filled items may be in the past; a little clock skew is forgiven for "now".
FUTURE_TOLERANCE = timedelta(minutes=1)
# The furthest ahead a publish can be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=365)


# Told about every committed event, in seq order per blog, before the write returns.
# A listener must not wait or fail: it hands the events on (the hub, the webhook worker).
CommitListener = Callable[[Sequence[Announcement]], None]
# Told about the private changes of a commit (drafts, submissions, returns), after its
# events: never the hub, the log or a webhook, only the newsroom's channel.
NoteListener = Callable[[Sequence[PrivateNote]], None]


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class AlreadyPublished(Conflict):
    code = "already_published"


class NotScheduled(Conflict):
    code = "not_scheduled"


# Where an entry may go from each state, whoever asks (the permissions then say who may).
# `scheduled` is reached by a publish with `hold_seconds` or `publish_at`; from there the
# entry is published when due (or at once with `"status": "published"`), or goes back.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"draft", "submitted", "published", "scheduled"}),
    "submitted": frozenset({"submitted", "draft", "returned", "published", "scheduled"}),
    "returned": frozenset({"returned", "draft", "submitted", "published", "scheduled"}),
    "scheduled": frozenset({"scheduled", "draft", "published"}),
    "published": frozenset({"published", "draft"}),
}
# What the audit log calls writing an entry in each state.
CREATED_ACTIONS = {
    "draft": "entry.drafted",
    "submitted": "entry.submitted",
    "published": "entry.published",
    "scheduled": "entry.scheduled",
}
# What readers see of an entry: a change to one after publishing shows as "Updated" (unless
# marked minor); pins, flags and times do not.
VISIBLE_FIELDS = frozenset({"headline", "body_html", "authors", "media"})
# Entry fields the audit log names when they change (never their text).
AUDITED_ENTRY_FIELDS = (
    "headline",
    "body_html",
    "authors",
    "media",
    "key_event",
    "tags",
    "pinned",
    "status",
    "published_at",
)


class Publisher:
    """Creates, edits, deletes and pins; appends the numbered event for each change."""

    def __init__(
        self,
        database: Database,
        renderer: Renderer,
        listeners: Sequence[CommitListener] = (),
        note_listeners: Sequence[NoteListener] = (),
        embeds: EmbedResolver | None = None,
    ) -> None:
        self.database = database
        self.renderer = renderer
        self.embeds = embeds
        self.listeners = tuple(listeners)
        self.note_listeners = tuple(note_listeners)
        # Told the due time of each publish held or scheduled here, after its commit (this
        # process's scheduler sets its timer).
        self.schedule_listeners: list[Callable[[datetime], None]] = []

    def _committed(
        self,
        events: Sequence[Announcement],
        notes: Sequence[PrivateNote] = (),
        due: datetime | None = None,
    ) -> None:
        for listener in self.listeners:
            listener(events)
        if notes:
            for note_listener in self.note_listeners:
                note_listener(notes)
        if due is not None:
            for schedule_listener in self.schedule_listeners:
                schedule_listener(due)

    # --- blogs -------------------------------------------------------------

    async def create_blog(self, data: BlogCreate, actor: Principal = SYSTEM) -> BlogPublic:
        permissions.require_admin(actor, "Creating blogs")
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
                    language=data.language,
                    coverage_start=data.coverage_start or now,
                    coverage_end=data.coverage_end or (now if data.status == "ended" else None),
                    topics=data.topics,
                    previous_blog_id=await _previous_blog_id(session, data.previous_slug),
                    require_alt_text=data.require_alt_text,
                    noindex=data.noindex,
                    show_readers_count=data.show_readers_count,
                    head_seq=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(blog)
                await session.flush()
                audit.record(
                    session, actor, "blog.created", blog_id=blog.id, details={"slug": blog.slug}
                )
                return await to_blog_public(session, blog)
        except IntegrityError as error:
            # Two requests raced for the same slug; the loser gets the same answer.
            raise Conflict(f"A blog with the slug '{data.slug}' exists already.") from error

    async def update_blog(
        self,
        slug: str,
        data: BlogUpdate,
        actor: Principal = SYSTEM,
        if_match: IfMatch | None = None,
    ) -> BlogPublic:
        changes = data.model_dump(exclude_unset=True)
        _refuse_nulls(changes, nullable={"coverage_end", "previous_slug"})
        committed: list[Announcement] = []
        async with self.database.write_session(slug) as session:
            blog = await _lock_blog(session, slug)
            permissions.check_blog_change(actor, blog, changes)
            if if_match is not None and not if_match.matches(blog_tag(blog.version)):
                last = await audit.last_blog_change(session, blog.id)
                who, when = last if last is not None else (None, blog.updated_at)
                raise PreconditionFailed(
                    _changed_since(f"Blog '{slug}'", blog.version, who, when),
                    current={
                        "etag": blog_tag(blog.version),
                        "version": blog.version,
                        "changed_by": who,
                        "changed_at": when.isoformat(),
                        "blog": (await to_blog_public(session, blog)).model_dump(mode="json"),
                    },
                )
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
                before = {name: getattr(blog, name) for name in changed}
                for name, value in changed.items():
                    setattr(blog, name, value)
                blog.updated_at = utc_now()
                blog.version += 1
                event_type: EventType = (
                    "blog.ended" if blog.status == "ended" and not was_ended else "blog.updated"
                )
                seq = _next_seq(blog)
                details = await to_blog_public(session, blog)
                event = EventPublic(seq=seq, type=event_type, blog=slug, details=details)
                committed.append(_store_event(session, blog, event, actor=actor))
                action = "blog.updated"
                if "status" in changed:
                    action = "blog.ended" if blog.status == "ended" else "blog.reopened"
                audit.record(
                    session,
                    actor,
                    action,
                    blog_id=blog.id,
                    seq=seq,
                    details=audit.changed(before, changed),
                )
            public = await to_blog_public(session, blog)
        self._committed(committed)
        return public

    async def update_blog_settings(
        self, slug: str, data: BlogSettingsUpdate, actor: Principal = SYSTEM
    ) -> BlogSettingsPublic:
        """Change a blog's newsroom settings (an owner's): private, so nothing is logged
        in its change log; the audit log records it."""
        changes = data.model_dump(exclude_unset=True)
        async with self.database.write_session(slug) as session:
            blog = await _lock_blog(session, slug)
            permissions.require_role(actor, blog, "owner", "Changing a blog's settings")
            before = {name: getattr(blog, name) for name in changes}
            if before != changes:
                for name, value in changes.items():
                    setattr(blog, name, value)
                audit.record(
                    session,
                    actor,
                    "blog.settings_changed",
                    blog_id=blog.id,
                    details=audit.changed(before, changes),
                )
            return to_blog_settings(blog)

    # --- entries -----------------------------------------------------------

    async def create_entry(
        self,
        slug: str,
        data: EntryCreate,
        idempotency_key: str | None = None,
        actor: Principal = SYSTEM,
    ) -> tuple[EntryPublic, bool]:
        """Store a new entry; returns it and whether this was a replay of an earlier request.

        An entry written by a user without `authors` gets the user's name as its byline."""
        # A request without a hold or tags has the fingerprint it had before they existed.
        unused = {name for name in ("hold_seconds", "tags") if not getattr(data, name)}
        fingerprint = hashlib.sha256(data.model_dump_json(exclude=unused).encode()).hexdigest()
        committed: list[Announcement] = []

        def may_write(blog: Blog) -> None:
            permissions.check_new_entry(actor, blog, data.status, data.pinned)

        embeds = await self._embed_snapshots(slug, data.media, may_write)
        # Sanitised before the transaction: nothing slow waits under the blog's lock.
        body_html = sanitise_html(data.body)
        # A pin (one per blog) and an Idempotency-Key (one entry per key) are decided under
        # the blog's lock, so those take it first. Any other entry is written first and the
        # lock is taken only to number its event (`_lock_for_event`): concurrent writers of
        # one blog then queue for the numbering and the commit alone. On SQLite the
        # transaction holds the database's write lock from its BEGIN, so there is nothing
        # to gain: it locks first too.
        lock_first = data.pinned or idempotency_key is not None or self.database.is_sqlite
        async with self.database.write_session(slug) as session:
            blog = await (_lock_blog(session, slug) if lock_first else _find_blog(session, slug))
            may_write(blog)
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
            due = _due_time(data.hold_seconds, data.publish_at, now)
            if data.pinned and data.status != "published":
                raise InvalidInput(
                    "Only a published entry can be pinned.", fields={"pinned": "publish it first"}
                )
            if data.pinned:
                committed += await self._unpin_current(session, blog, now, actor)
            if not (data.headline or NOT_BLANK.search(body_html) or data.media):
                raise InvalidInput("An entry needs a headline, a body or media.")
            authors = [author.model_dump(exclude_none=True) for author in data.authors]
            if not authors and actor.name:
                authors = [{"name": actor.name}]
            media = await resolve_media(session, blog, data.media, embeds)
            if data.status == "published":
                refuse_images_without_alt_text(blog, media)
            entry = Entry(
                blog_id=blog.id,
                headline=data.headline or None,
                body_html=body_html,
                authors=authors,
                media=media,
                key_event=data.key_event,
                tags=data.tags,
                pinned=data.pinned,
                status="scheduled" if due else data.status,
                published_at=published_at,
                created_at=now,
                updated_at=now,
                version=1,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint if idempotency_key else None,
                created_by=actor.user_id,
            )
            if due is not None:
                _schedule(entry, due, "draft", actor)
            session.add(entry)
            await session.flush()
            _add_tags(session, entry)
            revisions.keep(session, entry, actor)
            if entry.status == "published":
                forms = self._public_forms(blog, entry)  # rendered before the lock
                if not lock_first:
                    await _lock_for_event(session, blog, may_write)
                committed.append(
                    self._entry_event(session, blog, "entry.created", entry, actor, forms)
                )
            audit.record(
                session,
                actor,
                CREATED_ACTIONS[entry.status],
                blog_id=blog.id,
                entry_id=entry.id,
                seq=committed[0].seq if committed else None,
                details={"status": entry.status, "pinned": entry.pinned}
                | _schedule_details(due, data.hold_seconds),
            )
            public = to_entry_public(entry, slug)
            if idempotency_key is not None:
                entry.idempotent_answer = public.model_dump_json()
            notes = self._notes(blog, entry, previous_status=None)
        self._committed(committed, notes, due)
        return public, False

    async def update_entry(
        self,
        slug: str,
        entry_id: int,
        data: EntryUpdate,
        actor: Principal = SYSTEM,
        if_match: IfMatch | None = None,
    ) -> EntryPublic:
        changes = data.model_dump(exclude_unset=True)
        redact = changes.pop("redact", False)
        correction: str | None = changes.pop("correction", None)
        minor = changes.pop("minor", False)
        hold_seconds = changes.pop("hold_seconds", 0)
        publish_at = changes.pop("publish_at", None)
        _refuse_nulls(changes, nullable={"headline"})
        committed: list[Announcement] = []

        def may_write(blog: Blog) -> None:
            permissions.require_role(actor, blog, "contributor", "Changing entries")

        embeds = await self._embed_snapshots(
            slug, data.media if isinstance(data.media, list) else [], may_write, entry_id
        )
        async with self.database.write_session(slug) as session:
            blog = await _lock_blog(session, slug)
            # Before the entry is looked for: who may not write here learns nothing of it.
            may_write(blog)
            entry = await find_entry(session, blog, entry_id, include_drafts=True)
            await _require_entry_unchanged(session, entry, slug, if_match)
            old_status = entry.status
            values = _entry_values(changes)
            if "media" in values:
                items = data.media if isinstance(data.media, list) else []
                values["media"] = await resolve_media(session, blog, items, embeds)
            changed = {k: v for k, v in values.items() if getattr(entry, k) != v}
            new_status = changed.get("status", old_status)
            now = utc_now()
            due = _due_time(hold_seconds, publish_at, now)
            if due is not None:
                new_status = _scheduled_status(entry, changes.get("status"))
                changed["status"] = new_status
                if new_status == old_status:
                    del changed["status"]
            permissions.check_entry_change(actor, blog, entry, new_status, changed)
            if new_status not in TRANSITIONS[old_status]:
                raise InvalidTransition(
                    f"A {old_status} entry cannot be {new_status}: take it back to draft first."
                )
            if correction is not None and not old_status == new_status == "published":
                raise InvalidInput(
                    f"Entry {entry.id} is {old_status}: a correction note goes with an edit of "
                    "a published entry that stays published.",
                    fields={"correction": "only for a published entry"},
                )
            if not changed and correction is None and due is None:
                if redact and entry.status == "published":
                    permissions.require_role(actor, blog, "editor", "Redacting")
                    committed += await self._redact(session, blog, entry, actor)
                    if committed:
                        self._audit_entry(session, actor, blog, entry, "entry.redacted", committed)
                    public = to_entry_public(entry, slug)
                    self._committed(committed)
                    return public
                return to_entry_public(entry, slug)
            if new_status in ("submitted", "published") and entry.review_note is not None:
                changed["review_note"] = None  # sent again: the note has been answered

            was_public, was_pinned = old_status == "published", entry.pinned
            was_due = entry.publish_at
            before = {name: getattr(entry, name) for name in AUDITED_ENTRY_FIELDS}
            if (
                new_status == "published"
                and not was_public
                and "published_at" not in changes
                and not await _was_ever_public(session, entry)
            ):
                # A draft or a submission is published when it goes out, not when written.
                changed["published_at"] = now
            wants_pin = changed.pop("pinned", entry.pinned)
            if wants_pin and new_status != "published":
                if changes.get("pinned") and "status" in changes:
                    raise InvalidInput(
                        "Only a published entry can be pinned.",
                        fields={"pinned": "publish it first"},
                    )
                if changes.get("pinned"):
                    # The request is sound; the entry's stored state is what refuses it.
                    raise Conflict(
                        f"Only a published entry can be pinned: this one is {old_status}."
                    )
                wants_pin = False  # taking an entry back to draft unpins it
            if "published_at" in changed:
                _refuse_future(changed["published_at"], now)
            for name, value in changed.items():
                setattr(entry, name, value)
            if "tags" in changed:
                await _index_tags(session, entry)
            if not (entry.headline or NOT_BLANK.search(entry.body_html) or entry.media):
                raise InvalidInput("An entry needs a headline, a body or media.")
            goes_out = entry.status in ("published", "scheduled")
            if goes_out and ("media" in changed or old_status not in ("published", "scheduled")):
                refuse_images_without_alt_text(blog, entry.media)
            if due is not None:
                _schedule(entry, due, old_status, actor)
            elif old_status == "scheduled" and entry.status != "scheduled":
                _unschedule(entry)
            if wants_pin and not was_pinned:
                committed += await self._unpin_current(session, blog, now, actor)
            entry.pinned = wants_pin
            # Readers are told of a change after publishing: "Updated", and any correction.
            if was_public and entry.status == "published":
                if correction is not None or (not minor and VISIBLE_FIELDS & changed.keys()):
                    entry.modified_at = now
                if correction is not None:
                    entry.corrections = [
                        *entry.corrections,
                        {"note": correction, "at": now.isoformat()},
                    ]
            entry.version += 1
            entry.updated_at = now
            await session.flush()
            revisions.keep(session, entry, actor, correction=correction, minor=minor)

            is_public = entry.status == "published"
            if was_public and not is_public:
                committed.append(self._tombstone_event(session, blog, entry, now, actor))
                # Back to draft: what it said is no longer public, in the log either.
                committed += await self._redact(session, blog, entry, actor)
            elif is_public:
                event_type: EventType = "entry.created" if not was_public else "entry.updated"
                if was_public and entry.pinned != was_pinned:
                    event_type = "entry.pinned" if entry.pinned else "entry.unpinned"
                committed.append(self._entry_event(session, blog, event_type, entry, actor))
                if redact:
                    committed += await self._redact(session, blog, entry, actor)
            after = {name: getattr(entry, name) for name in AUDITED_ENTRY_FIELDS}
            details = audit.changed(before, after)
            if entry.status == "returned" and "review_note" in changed:
                details["review_note"] = entry.review_note
            if redact and is_public:
                details["redacted"] = True
            if correction is not None:
                details["correction"] = correction
            elif minor and is_public:
                details["minor"] = True
            details |= _schedule_details(due, hold_seconds)
            action = _change_action(actor, blog, old_status, entry.status, was_pinned, entry.pinned)
            if action == "entry.edited" and due is not None and due != was_due:
                action = "entry.rescheduled"
            self._audit_entry(session, actor, blog, entry, action, committed, details)
            public = to_entry_public(entry, slug)
            notes = self._notes(blog, entry, previous_status=old_status)
        self._committed(committed, notes, due)
        return public

    async def cancel_publish(
        self,
        slug: str,
        entry_id: int,
        actor: Principal = SYSTEM,
        if_match: IfMatch | None = None,
    ) -> EntryPublic:
        """Undo a held or scheduled publish before it goes out: the entry goes back to the
        state it was published from (a new entry: a draft), and nothing was ever sent.
        Once it is published this is 409 `already_published`."""
        async with self.database.write_session(slug) as session:
            blog = await _lock_blog(session, slug)
            permissions.require_role(actor, blog, "contributor", "Cancelling a publish")
            entry = await find_entry(session, blog, entry_id, include_drafts=True)
            permissions.check_cancel_publish(actor, blog, entry)
            await _require_entry_unchanged(session, entry, slug, if_match)
            if entry.status == "published":
                raise AlreadyPublished(
                    f"Entry {entry_id} is published already: take it back to draft, or delete "
                    "it, to remove it from readers' pages."
                )
            if entry.status != "scheduled":
                raise NotScheduled(
                    f"Entry {entry_id} is {entry.status}: it has no publish waiting."
                )
            due = entry.publish_at
            entry.status = entry.scheduled_from or "draft"
            _unschedule(entry)
            entry.version += 1
            entry.updated_at = utc_now()
            await session.flush()
            revisions.keep(session, entry, actor)
            details = {"status": {"from": "scheduled", "to": entry.status}}
            details |= _schedule_details(due, 0)
            self._audit_entry(session, actor, blog, entry, "entry.schedule_cancelled", [], details)
            public = to_entry_public(entry, slug)
            notes = self._notes(blog, entry, previous_status="scheduled")
        self._committed([], notes)
        return public

    async def publish_due(self, entry_id: int, lease_owner: str) -> bool:
        """Publish a scheduled entry that is due, for the scheduler holding its lease: in the
        transaction that logs it, so it goes out once whatever stops when. Its event and its
        audit record are of who scheduled it. False if it is not (or no longer) ours to
        publish: cancelled, rescheduled, published already, or leased to another process;
        or if who scheduled it was disabled or lost the right to publish here since, and
        the entry went back to where it was published from (`entry.schedule_dropped`)."""
        committed: list[Announcement] = []
        dropped: list[PrivateNote] = []
        async with self.database.write_session() as session:
            blog_id = await session.scalar(select(Entry.blog_id).where(Entry.id == entry_id))
            if blog_id is None:
                return False
            blog = await session.scalar(
                select(Blog).where(Blog.id == blog_id).with_for_update(**BLOG_LOCK)
            )
            # Read under the blog's lock, which every change to its entries takes first.
            entry = await session.scalar(
                select(Entry).where(Entry.id == entry_id).execution_options(populate_existing=True)
            )
            now = utc_now()
            if (
                blog is None
                or entry is None
                or entry.status != "scheduled"
                or entry.schedule_lease_owner != lease_owner
                or entry.publish_at is None
                or entry.publish_at > now
            ):
                return False
            actor = await _scheduler_of(session, entry)
            refusal = await _refusal_of_scheduler(session, blog, entry)
            if refusal is None:
                committed = await self._publish_scheduled(session, blog, entry, actor, now)
            else:
                dropped = await self._drop_schedule(session, blog, entry, actor, refusal, now)
        # After the commit: told only of what is stored.
        self._committed(committed, dropped)
        return refusal is None

    async def _publish_scheduled(
        self, session: AsyncSession, blog: Blog, entry: Entry, actor: Principal, now: datetime
    ) -> list[Announcement]:
        """Publish the due entry, as who scheduled it; its event."""
        came_from, due = entry.scheduled_from or "draft", entry.publish_at
        before = {name: getattr(entry, name) for name in AUDITED_ENTRY_FIELDS}
        if not await _was_ever_public(session, entry):
            entry.published_at = now  # dated when it goes out, as any first publish
        entry.status = "published"
        entry.review_note = None
        _unschedule(entry)
        entry.version += 1
        entry.updated_at = now
        await session.flush()
        revisions.keep(session, entry, actor)
        committed = [self._entry_event(session, blog, "entry.created", entry, actor)]
        after = {name: getattr(entry, name) for name in AUDITED_ENTRY_FIELDS}
        details = audit.changed(before, after) | {"scheduled": True}
        details |= _schedule_details(due, 0)
        action = "entry.approved" if came_from in ("submitted", "returned") else "entry.published"
        self._audit_entry(session, actor, blog, entry, action, committed, details)
        return committed

    async def _drop_schedule(
        self,
        session: AsyncSession,
        blog: Blog,
        entry: Entry,
        actor: Principal,
        reason: str,
        now: datetime,
    ) -> list[PrivateNote]:
        """Take back a due publish that its scheduler may no longer make, as an undo would:
        to the state it was published from, nothing sent; audited and told with why."""
        due = entry.publish_at
        entry.status = entry.scheduled_from or "draft"
        _unschedule(entry)
        entry.version += 1
        entry.updated_at = now
        await session.flush()
        revisions.keep(session, entry, actor)
        details = {"status": {"from": "scheduled", "to": entry.status}, "reason": reason}
        details |= _schedule_details(due, 0)
        self._audit_entry(session, actor, blog, entry, "entry.schedule_dropped", [], details)
        return [build_note(blog, entry, self.renderer, "scheduled", reason=reason)]

    async def delete_entry(
        self,
        slug: str,
        entry_id: int,
        actor: Principal = SYSTEM,
        if_match: IfMatch | None = None,
    ) -> None:
        """Tombstone an entry. Deleting it again changes nothing and succeeds."""
        committed: list[Announcement] = []
        async with self.database.write_session(slug) as session:
            blog = await _lock_blog(session, slug)
            permissions.require_role(actor, blog, "contributor", "Deleting entries")
            entry = await find_in_blog(session, Entry, blog, entry_id, what="entry")
            permissions.check_entry_delete(actor, blog, entry)
            await _require_entry_unchanged(session, entry, slug, if_match)
            if entry.status == "deleted":
                return
            old_status = entry.status
            was_public = entry.status == "published"
            now = utc_now()
            entry.status = "deleted"
            entry.pinned = False
            _unschedule(entry)  # a deleted entry's publish no longer waits
            entry.deleted_at = now
            entry.updated_at = now
            entry.version += 1
            revisions.keep(session, entry, actor)
            if was_public:
                committed.append(self._tombstone_event(session, blog, entry, now, actor))
                committed += await self._redact(session, blog, entry, actor)
            details = {"status": {"from": old_status, "to": "deleted"}}
            self._audit_entry(session, actor, blog, entry, "entry.deleted", committed, details)
            notes = [] if was_public else self._notes(blog, entry, previous_status=old_status)
            # Nobody edits a deleted entry: its flag goes with it, not when it lapses.
            flag_gone = await session.scalar(
                delete(EditingFlag)
                .where(EditingFlag.entry_id == entry.id)
                .returning(EditingFlag.entry_id)
            )
            if flag_gone is not None:
                notes.append(editing_note(blog.slug, blog.id, entry.id, None))
        self._committed(committed, notes)

    async def restore_revision(
        self,
        slug: str,
        entry_id: int,
        version: int,
        actor: Principal = SYSTEM,
        if_match: IfMatch | None = None,
    ) -> EntryPublic:
        """Bring an earlier version's content back as a new version: an edit like any other
        (logged, live, in the feeds), so nothing of what came between is lost."""
        async with self.database.read_session() as session:
            blog = await find_blog(session, slug)
            permissions.require_role(actor, blog, "editor", "Restoring a revision")
            entry = await find_in_blog(session, Entry, blog, entry_id, what="entry")
            revision = await revisions.one(session, entry.id, version)
            if entry.status == "deleted":
                raise Conflict(
                    f"Entry {entry_id} is deleted: its revisions can be read, not restored. "
                    "Publish a new entry with what it said."
                )
            content = {name: getattr(revision, name) for name in revisions.CONTENT_FIELDS}
        content["body"] = content.pop("body_html")
        content["media"] = [revisions.media_as_sent(item) for item in content["media"]]
        data = EntryUpdate.model_validate(content)
        return await self.update_entry(slug, entry_id, data, actor, if_match)

    async def _embed_snapshots(
        self,
        slug: str,
        items: Sequence[Media],
        may_write: Callable[[Blog], None],
        entry_id: int | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Snapshots of the entry's embeds, looked up before its transaction: the network
        never holds the blog's lock. Only for whoever may write here (checked again in the
        transaction); an edit keeps the snapshots of embeds it keeps."""
        urls = [item.url for item in items if item.kind == "embed" and item.url is not MISSING]
        if self.embeds is None or not urls:
            return {}
        known: dict[str, dict[str, Any]] = {}
        async with self.database.read_session() as session:
            blog = await find_blog(session, slug)
            may_write(blog)
            entry = await session.get(Entry, entry_id) if entry_id is not None else None
            if entry is not None and entry.blog_id == blog.id:
                known = {
                    item["url"]: item["embed"]
                    for item in entry.media
                    if item.get("embed") and item["embed"].get("resolved")
                }
        return await self.embeds.snapshots(urls, known)

    def _audit_entry(
        self,
        session: AsyncSession,
        actor: Principal,
        blog: Blog,
        entry: Entry,
        action: str,
        committed: Sequence[Announcement],
        details: dict[str, Any] | None = None,
    ) -> None:
        first_seq = committed[0].seq if committed else None
        audit.record(
            session,
            actor,
            action,
            blog_id=blog.id,
            entry_id=entry.id,
            seq=first_seq,
            details=details,
        )

    def _notes(self, blog: Blog, entry: Entry, previous_status: str | None) -> list[PrivateNote]:
        """The newsroom's note of a change that leaves an entry private (or deletes one that
        was); none when it is published, which its public event says."""
        if entry.status == "published" or (
            entry.status == "deleted" and previous_status not in permissions.PRIVATE_STATES
        ):
            return []
        return [build_note(blog, entry, self.renderer, previous_status)]

    # --- redactions ----------------------------------------------------------

    async def _redact(
        self, session: AsyncSession, blog: Blog, entry: Entry, actor: Principal
    ) -> list[Announcement]:
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
        return [_store_event(session, blog, event, entry_id=entry.id, actor=actor)]

    def _public_forms(self, blog: Blog, entry: Entry) -> dict[str, Any]:
        """The entry as every public event of it shows it now."""
        public = to_entry_public(entry, blog.slug)
        # The key-events list and the headline list show an entry the same way.
        headline_html = self.renderer.render_key_event(
            public, blog.timezone, language=blog.language
        )
        return {
            "entry": public,
            "html": self.renderer.render_entry(public, blog.timezone, language=blog.language),
            "key_event_html": headline_html if public.key_event else None,
            "headline_html": headline_html,
        }

    # --- events ------------------------------------------------------------

    async def _unpin_current(
        self, session: AsyncSession, blog: Blog, now: datetime, actor: Principal
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
        revisions.keep(session, current, actor)
        if current.status != "published":
            return []
        return [self._entry_event(session, blog, "entry.unpinned", current, actor)]

    def _entry_event(
        self,
        session: AsyncSession,
        blog: Blog,
        event_type: EventType,
        entry: Entry,
        actor: Principal,
        forms: dict[str, Any] | None = None,
    ) -> Announcement:
        """Log the entry's event; `forms` are its `_public_forms`, if rendered already."""
        if forms is None:
            forms = self._public_forms(blog, entry)
        event = EventPublic(seq=_next_seq(blog), type=event_type, blog=blog.slug, **forms)
        return _store_event(session, blog, event, entry_id=entry.id, actor=actor)

    def _tombstone_event(
        self, session: AsyncSession, blog: Blog, entry: Entry, now: datetime, actor: Principal
    ) -> Announcement:
        tombstone = EntryTombstone(id=entry.id, blog=blog.slug, deleted_at=now)
        event = EventPublic(
            seq=_next_seq(blog), type="entry.deleted", blog=blog.slug, entry=tombstone
        )
        return _store_event(session, blog, event, entry_id=entry.id, actor=actor)


# The blog's lock, on PostgreSQL `FOR NO KEY UPDATE`: writers of the blog queue on it, but
# a row that merely refers to the blog (its foreign key takes `KEY SHARE`) does not, so an
# entry written before the lock is taken never deadlocks with another writer.
BLOG_LOCK: dict[str, Any] = {"key_share": True}


async def _lock_blog(session: AsyncSession, slug: str) -> Blog:
    """Load the blog for writing, holding its lock until the transaction ends."""
    return await _find_blog(session, slug, lock=True)


async def _find_blog(session: AsyncSession, slug: str, *, lock: bool = False) -> Blog:
    """Load the blog to write to; without `lock`, `_lock_for_event` must follow before its
    seq moves."""
    if not is_slug(slug):
        raise NotFound(f"There is no blog '{slug}'.")
    query = select(Blog).where(Blog.slug == slug)
    blog = await session.scalar(query.with_for_update(**BLOG_LOCK) if lock else query)
    if blog is None:
        raise NotFound(f"There is no blog '{slug}'.")
    return blog


async def _lock_for_event(
    session: AsyncSession, blog: Blog, may_write: Callable[[Blog], None]
) -> None:
    """Take the lock of a blog loaded by `_find_blog`, reading it again as it is now (its
    `head_seq`, and what `may_write` checks, may have moved since)."""
    await session.refresh(blog, with_for_update=BLOG_LOCK)
    may_write(blog)


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
        "headline_html": None,
    }


def _wire_bytes(event: EventPublic) -> bytes:
    """An event's wire form: its fields, less the optional ones it does not carry."""
    optional = ("entry", "html", "key_event_html", "headline_html", "details", "redacted_seqs")
    absent = {name for name in optional if getattr(event, name) is None}
    return event.model_dump_json(exclude=absent).encode()


def _store_event(
    session: AsyncSession,
    blog: Blog,
    event: EventPublic,
    entry_id: int | None = None,
    *,
    actor: Principal,
) -> Announcement:
    payload = _wire_bytes(event)
    append_row(
        session,
        Event,
        {
            "blog_id": blog.id,
            "seq": event.seq,
            "type": event.type,
            "entry_id": entry_id,
            "payload": payload,
            # Who made the change is kept beside the payload, never in it.
            "actor_user_id": actor.user_id,
            "actor_token_id": actor.token_id,
        },
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


def _due_time(hold_seconds: int, publish_at: object, now: datetime) -> datetime | None:
    """When a held or scheduled publish is due; None for a publish now. A schedule in the
    past or more than a year ahead is refused (422)."""
    if hold_seconds:
        return now + timedelta(seconds=hold_seconds)
    if not isinstance(publish_at, datetime):
        return None
    if publish_at <= now:
        raise InvalidInput(
            "publish_at must be in the future; publish now without it.",
            fields={"publish_at": "must be later than now"},
        )
    if publish_at > now + MAX_SCHEDULE_AHEAD:
        raise InvalidInput(
            "publish_at may be at most a year ahead.",
            fields={"publish_at": "must be within a year from now"},
        )
    return publish_at


def _scheduled_status(entry: Entry, status: str | None) -> str:
    """Where a hold or schedule in an edit takes the entry: `scheduled`, from a private state
    with `"status": "published"`, or again (a new time) if it is scheduled. 409 otherwise."""
    if entry.status == "published":
        raise AlreadyPublished(f"Entry {entry.id} is published already: it cannot be held.")
    if entry.status == "scheduled" or status == "published":
        return "scheduled"
    raise NotScheduled(
        f'Entry {entry.id} is {entry.status}: hold or schedule it with "status": "published".'
    )


def _schedule(entry: Entry, due: datetime, came_from: str, actor: Principal) -> None:
    """Set the entry to wait for `due`, published then as `actor`. A new time gives up any
    lease on the old one: the scheduler claims it afresh."""
    if entry.status != "scheduled" or entry.scheduled_from is None:
        entry.scheduled_from = came_from if came_from != "scheduled" else "draft"
    entry.status = "scheduled"
    entry.publish_at = due
    entry.scheduled_by = actor.user_id
    entry.scheduled_token = actor.token_id
    entry.schedule_lease_owner = None
    entry.schedule_lease_until = None


def _unschedule(entry: Entry) -> None:
    entry.publish_at = None
    entry.scheduled_from = None
    entry.scheduled_by = None
    entry.scheduled_token = None
    entry.schedule_lease_owner = None
    entry.schedule_lease_until = None


def _schedule_details(due: datetime | None, hold_seconds: int) -> dict[str, Any]:
    if due is None:
        return {}
    details: dict[str, Any] = {"publish_at": due.isoformat()}
    if hold_seconds:
        details["hold_seconds"] = hold_seconds
    return details


async def _scheduler_of(session: AsyncSession, entry: Entry) -> Principal:
    """Who scheduled the entry, as the actor of its publish."""
    user = await session.get(User, entry.scheduled_by) if entry.scheduled_by else None
    return Principal(
        via="scheduler",
        user_id=entry.scheduled_by,
        token_id=entry.scheduled_token,
        name=user.name if user is not None else None,
    )


async def _refusal_of_scheduler(session: AsyncSession, blog: Blog, entry: Entry) -> str | None:
    """Why who scheduled the entry may not publish it now (disabled, or no longer allowed
    to publish here), or None if they still may. A publish of no user's (a legacy token,
    Bulletin itself) stands."""
    if entry.scheduled_by is None:
        return None
    user = await session.get(User, entry.scheduled_by)
    if user is None or user.disabled_at is not None:
        return "Not published: who scheduled it is no longer an active user."
    principal = await for_user(session, user, via="scheduler")
    try:
        permissions.check_entry_change(principal, blog, entry, "published", ())
    except Forbidden as refused:
        return f"Not published: who scheduled it may no longer publish here. {refused}"
    return None


def _refuse_future(published_at: datetime, now: datetime) -> None:
    if published_at > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            "published_at may not be in the future.",
            fields={"published_at": "must not be later than now"},
        )


async def _was_ever_public(session: AsyncSession, entry: Entry) -> bool:
    """Whether the entry has been in the change log (published once, then taken back)."""
    logged = await session.scalar(select(Event.id).where(Event.entry_id == entry.id).limit(1))
    return logged is not None


def _change_action(
    actor: Principal, blog: Blog, old: str, new: str, was_pinned: bool, pinned: bool
) -> str:
    """What the audit log calls a change of an entry from status `old` to `new`."""
    if new == "scheduled" and old != "scheduled":
        return "entry.scheduled"
    if old == "scheduled" and new != "published" and new != old:
        return "entry.schedule_cancelled"
    if old == new:
        if pinned != was_pinned:
            return "entry.pinned" if pinned else "entry.unpinned"
        return "entry.edited"
    if new == "published":
        reviewed = old in ("submitted", "returned")
        return (
            "entry.approved"
            if reviewed and at_least(actor.role_on(blog.id), "editor")
            else ("entry.published")
        )
    if new == "draft":
        return "entry.unpublished" if old == "published" else "entry.withdrawn"
    return "entry.submitted" if new == "submitted" else "entry.returned"


def to_blog_settings(blog: Blog) -> BlogSettingsPublic:
    return BlogSettingsPublic(
        blog=blog.slug, contributors_may_publish=blog.contributors_may_publish
    )


async def _index_tags(session: AsyncSession, entry: Entry) -> None:
    """One entry_tags row per tag the entry now has (what a page filtered by tag reads)."""
    await session.execute(delete(EntryTag).where(EntryTag.entry_id == entry.id))
    _add_tags(session, entry)


def _add_tags(session: AsyncSession, entry: Entry) -> None:
    """The entry_tags rows of an entry that has none yet (a new one)."""
    session.add_all(EntryTag(entry_id=entry.id, blog_id=entry.blog_id, tag=t) for t in entry.tags)


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


def _changed_since(what: str, version: int, who: str | None, when: datetime) -> str:
    """A 412's message: what changed since the caller read it, to which version, by whom."""
    by = f", changed by {who}" if who else ""
    return (
        f"{what} changed since you read it: it is at version {version}{by}"
        f" at {when.strftime('%H:%M:%S')} UTC. Nothing was written."
    )


async def _require_entry_unchanged(
    session: AsyncSession, entry: Entry, slug: str, if_match: IfMatch | None
) -> None:
    """412, writing nothing, when the caller's If-Match names another version of the entry:
    someone changed it since the caller read it. Says who, and what it holds now."""
    if if_match is None or if_match.matches(entry_tag(entry.id, entry.version)):
        return
    newest = await revisions.newest(session, entry.id)
    who = newest.actor_name if newest is not None else None
    when = newest.created_at if newest is not None else entry.updated_at
    raise PreconditionFailed(
        _changed_since(f"Entry {entry.id}", entry.version, who, when),
        current={
            "etag": entry_tag(entry.id, entry.version),
            "version": entry.version,
            "changed_by": who,
            "changed_at": when.isoformat(),
            "entry": to_entry_public(entry, slug).model_dump(mode="json"),
        },
    )
