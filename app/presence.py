"""Who is editing: a short-lived flag per entry, held by one member while they type.

The newsroom takes an entry's flag when an editor starts to change it
(`PUT .../entries/{id}/editing`) and renews it every few seconds while they type; it lives
BULLETIN_EDITING_SECONDS (30 s) unless renewed. Another member who tries to take it is
answered 409 `being_edited`, naming the holder, unless they ask to take it over. Saving the
entry (PATCH) or leaving it (`DELETE .../editing`) releases it; a flag nobody renews expires.

The flags are rows of one table (`editing_flags`), not memory of one process: every process
and machine in front of the same database sees the same holder, on SQLite and PostgreSQL,
with or without Redis, and a take is atomic (the entry's row lock on PostgreSQL, the single
writer on SQLite). A renewal every ten seconds per typing editor is a small write.

Each take, take-over, release and expiry is told to the blog's newsroom readers as an
`entry.editing` note (app/realtime/newsroom.py): to members only, never to a public stream,
the change log, a feed or a webhook. Expiry is noticed by whichever process sweeps first
(each looks every BULLETIN_HUB_CHECK_SECONDS); the one whose delete removed the row tells.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import Conflict, Forbidden
from app.models import Blog, EditingFlag, Entry, utc_now
from app.people import permissions
from app.people.roles import Principal
from app.queries import find_blog, find_entry
from app.realtime.newsroom import NewsroomHub, PrivateNote
from app.revisions import actor_label
from app.schemas import UtcDatetime
from app.supervision import supervise

logger = logging.getLogger("bulletin.presence")

NOTE_TYPE = "entry.editing"


class EditingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    take_over: StrictBool = Field(
        False, description="Take the flag from another member who holds it (409 otherwise)."
    )


class EditorPublic(BaseModel):
    user_id: int
    name: str
    since: UtcDatetime = Field(description="When this member took the flag.")
    expires_at: UtcDatetime = Field(description="When it lapses unless renewed.")


class EditingPublic(BaseModel):
    entry_id: int
    editor: EditorPublic


class EditingList(BaseModel):
    items: list[EditingPublic] = Field(description="The blog's live flags, oldest first.")


class BeingEdited(Conflict):
    """409: another member holds the entry's flag. Says who, and until when."""

    code = "being_edited"

    def __init__(self, message: str, *, editor: EditorPublic) -> None:
        super().__init__(message)
        self.editor = editor

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["editor"] = self.editor.model_dump(mode="json")
        return body


def _editor(flag: EditingFlag) -> EditorPublic:
    return EditorPublic(
        user_id=flag.user_id, name=flag.user_name, since=flag.since, expires_at=flag.expires_at
    )


def editing_note(
    slug: str, blog_id: int, entry_id: int, editor: EditorPublic | None
) -> PrivateNote:
    """The newsroom's note of a flag taken (editor) or gone (None), for every member reader."""
    shown = editor.model_dump(mode="json") if editor is not None else None
    payload = {
        "type": NOTE_TYPE,
        "blog": slug,
        "entry_id": entry_id,
        "editor": shown,
        "expires_at": shown["expires_at"] if shown is not None else None,
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    return PrivateNote(slug, blog_id, entry_id, None, NOTE_TYPE, body, everyone=True)


class Presence:
    """Takes, renews, releases and sweeps the editing flags, and tells the newsroom."""

    def __init__(
        self,
        database: Database,
        newsroom: NewsroomHub,
        ttl_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self.database = database
        self.newsroom = newsroom
        self.ttl = timedelta(seconds=ttl_seconds)
        self.sweep_seconds = sweep_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(
            supervise("editing flags sweep", self._sweep_forever, restart_when_done=True),
            name="editing-sweep",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _editable_entry(
        self, session: AsyncSession, slug: str, entry_id: int, actor: Principal
    ) -> tuple[Blog, Entry, int]:
        """The entry, if the actor may edit it (403 before anything is looked up otherwise),
        and the actor's user."""
        blog = await find_blog(session, slug)
        permissions.require_role(actor, blog, "contributor", "Showing who is editing")
        entry = await find_entry(session, blog, entry_id, include_drafts=True)
        permissions.check_entry_change(actor, blog, entry, entry.status, ())
        if actor.user_id is None:
            raise Forbidden("Showing who is editing needs a user: sign in, or use a user's token.")
        return blog, entry, actor.user_id

    async def take(
        self, slug: str, entry_id: int, actor: Principal, *, take_over: bool = False
    ) -> EditingPublic:
        """Hold the entry's flag (or renew it) for the next BULLETIN_EDITING_SECONDS."""
        async with self.database.write_session() as session:
            blog, entry, user_id = await self._editable_entry(session, slug, entry_id, actor)
            # Serialises takes of one entry on PostgreSQL (SQLite has one writer anyway).
            await session.scalar(select(Entry.id).where(Entry.id == entry.id).with_for_update())
            flag = await session.get(EditingFlag, entry.id, with_for_update=True)
            now = utc_now()
            live = flag is not None and flag.expires_at > now
            if flag is not None and live and flag.user_id != user_id and not take_over:
                holder = _editor(flag)
                raise BeingEdited(
                    f"{holder.name} is editing entry {entry.id}; send "
                    '{"take_over": true} to take it over.',
                    editor=holder,
                )
            renewal = flag is not None and live and flag.user_id == user_id
            if flag is None:
                flag = EditingFlag(entry_id=entry.id, blog_id=blog.id)
                session.add(flag)
            if not renewal:
                flag.user_id = user_id
                flag.user_name = actor_label(actor) or f"user {user_id}"
                flag.since = now
            flag.expires_at = now + self.ttl
            answer = EditingPublic(entry_id=entry.id, editor=_editor(flag))
        if not renewal:
            self.newsroom.announce([editing_note(blog.slug, blog.id, entry.id, answer.editor)])
        return answer

    async def release(self, slug: str, entry_id: int, actor: Principal) -> None:
        """Give up the actor's own flag on the entry; nothing happens if it holds none."""
        async with self.database.read_session() as session:
            blog, entry, user_id = await self._editable_entry(session, slug, entry_id, actor)
        await self._drop(blog.id, blog.slug, entry.id, user_id)

    async def release_after_save(self, slug: str, entry_id: int, actor: Principal) -> None:
        """Drop the flag if `actor` holds it, after it saved the entry (the save checked its
        permission). The save stands whatever happens here: a failure is logged, and the
        flag then lapses by itself."""
        if actor.user_id is None:
            return
        try:
            async with self.database.read_session() as session:
                blog_id = await session.scalar(
                    select(EditingFlag.blog_id)
                    .join(Blog, Blog.id == EditingFlag.blog_id)
                    .where(
                        Blog.slug == slug,
                        EditingFlag.entry_id == entry_id,
                        EditingFlag.user_id == actor.user_id,
                    )
                )
            if blog_id is not None:  # the usual case is none: no write at all
                await self._drop(blog_id, slug, entry_id, actor.user_id)
        except Exception:
            logger.warning("releasing an editing flag after a save failed", exc_info=True)

    async def _drop(self, blog_id: int, slug: str, entry_id: int, user_id: int) -> None:
        async with self.database.write_session() as session:
            gone = await session.scalar(
                delete(EditingFlag)
                .where(
                    EditingFlag.entry_id == entry_id,
                    EditingFlag.blog_id == blog_id,
                    EditingFlag.user_id == user_id,
                )
                .returning(EditingFlag.entry_id)
            )
        if gone is not None:
            self.newsroom.announce([editing_note(slug, blog_id, entry_id, None)])

    async def live(self, slug: str, actor: Principal) -> EditingList:
        """The blog's live flags, for its members."""
        async with self.database.read_session() as session:
            blog = await find_blog(session, slug)
            permissions.require_role(actor, blog, "contributor", "Seeing who is editing")
            flags = await session.scalars(
                select(EditingFlag)
                .where(EditingFlag.blog_id == blog.id, EditingFlag.expires_at > utc_now())
                .order_by(EditingFlag.since, EditingFlag.entry_id)
            )
            items = [EditingPublic(entry_id=flag.entry_id, editor=_editor(flag)) for flag in flags]
        return EditingList(items=items)

    async def sweep(self, now: datetime | None = None) -> int:
        """Remove the flags that lapsed and tell their blogs' newsrooms; how many went."""
        now = now or utc_now()
        lapsed = EditingFlag.expires_at <= now
        async with self.database.read_session(background="editing flags") as session:
            if await session.scalar(select(EditingFlag.entry_id).where(lapsed).limit(1)) is None:
                return 0  # the usual case: a read, no write lock taken
        async with self.database.write_session() as session:
            gone = (
                await session.execute(
                    delete(EditingFlag)
                    .where(lapsed)
                    .returning(EditingFlag.entry_id, EditingFlag.blog_id)
                )
            ).all()
            blog_ids = {blog_id for _entry_id, blog_id in gone}
            slugs = dict(
                (
                    await session.execute(select(Blog.id, Blog.slug).where(Blog.id.in_(blog_ids)))
                ).all()
            )
        notes: Sequence[PrivateNote] = [
            editing_note(slugs[blog_id], blog_id, entry_id, None)
            for entry_id, blog_id in gone
            if blog_id in slugs
        ]
        if notes:
            self.newsroom.announce(notes)
        return len(gone)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            await self.sweep()
