"""Every version of every entry, kept with who wrote it: read, compared and restored.

The write path keeps a revision in the same transaction as each change that bumps an
entry's version (the first version included), so the newest revision is always what the
entry holds now, and who made it is who last changed it. Deleting an entry keeps them all.
"""

import difflib
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import append_row
from app.errors import NotFound
from app.models import Entry, EntryRevision
from app.people.roles import Principal
from app.rendering import plain_text
from app.schemas import AuthorPublic, EntryState, MediaPublic, RevisionPublic, RevisionsDiff

# What a revision keeps, and a restore brings back: the entry's content and flags.
CONTENT_FIELDS = ("headline", "body_html", "authors", "media", "key_event", "tags")
KEPT_FIELDS = (*CONTENT_FIELDS, "pinned", "status", "published_at")


def keep(
    session: AsyncSession,
    entry: Entry,
    actor: Principal,
    *,
    correction: str | None = None,
    minor: bool = False,
) -> None:
    """Keep the entry as it now is, as version `entry.version`, made by `actor` (with the
    correction note this change added, or marked a minor fix)."""
    append_row(
        session,
        EntryRevision,
        {
            "entry_id": entry.id,
            "blog_id": entry.blog_id,
            "version": entry.version,
            **{name: getattr(entry, name) for name in KEPT_FIELDS},
            "actor_user_id": actor.user_id,
            "actor_token_id": actor.token_id,
            "actor_name": actor_label(actor),
            "created_at": entry.updated_at,
            "correction": correction,
            "minor": minor,
        },
    )


def actor_label(actor: Principal) -> str | None:
    """Who made a change, as an editor reads it: the user's name, else the token's id."""
    if actor.name:
        return actor.name[:100]
    if actor.token_id is not None:
        return f"token {actor.token_id}"
    return "Bulletin" if actor.via == "system" else actor.via


async def newest(session: AsyncSession, entry_id: int) -> EntryRevision | None:
    return await session.scalar(
        select(EntryRevision)
        .where(EntryRevision.entry_id == entry_id)
        .order_by(EntryRevision.version.desc())
        .limit(1)
    )


async def all_of(session: AsyncSession, entry_id: int) -> list[EntryRevision]:
    """Newest first."""
    rows = await session.scalars(
        select(EntryRevision)
        .where(EntryRevision.entry_id == entry_id)
        .order_by(EntryRevision.version.desc())
    )
    return list(rows)


async def one(session: AsyncSession, entry_id: int, version: int) -> EntryRevision:
    revision = await session.scalar(
        select(EntryRevision).where(
            EntryRevision.entry_id == entry_id, EntryRevision.version == version
        )
    )
    if revision is None:
        raise NotFound(f"Entry {entry_id} has no version {version}.")
    return revision


def media_as_sent(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored media item as a request names it: an upload by its id (the renditions are
    looked up again), anything else by its URL."""
    source = "media_id" if stored.get("media_id") is not None else "url"
    kept = (source, "kind", "caption", "credit", "alt")
    return {name: stored[name] for name in kept if name in stored}


def to_public(revision: EntryRevision) -> RevisionPublic:
    return RevisionPublic(
        version=revision.version,
        headline=revision.headline,
        body=revision.body_html,
        authors=[AuthorPublic(**author) for author in revision.authors],
        media=[MediaPublic(**item) for item in revision.media],
        key_event=revision.key_event,
        tags=revision.tags,
        pinned=revision.pinned,
        status=cast(EntryState, revision.status),
        published_at=revision.published_at,
        changed_at=revision.created_at,
        changed_by=revision.actor_name,
        changed_by_user_id=revision.actor_user_id,
        correction=revision.correction,
        minor=revision.minor,
    )


def diff(older: EntryRevision, newer: EntryRevision) -> RevisionsDiff:
    """What changed from `older` to `newer`: each changed field's two values, and the
    headline and text as unified line diffs (of the text readers see, not the markup)."""
    changes: dict[str, dict[str, Any]] = {}
    for name in KEPT_FIELDS:
        before, after = getattr(older, name), getattr(newer, name)
        if before != after:
            field = "body" if name == "body_html" else name
            changes[field] = {"from": _plain(before), "to": _plain(after)}
    return RevisionsDiff(
        from_version=older.version,
        to_version=newer.version,
        changes=changes,
        headline_diff=_unified(older.headline or "", newer.headline or "", "headline"),
        text_diff=_unified(_paragraphs(older.body_html), _paragraphs(newer.body_html), "text"),
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _paragraphs(html: str) -> str:
    # One line per block, so a diff points at the paragraph that changed.
    blocks = html.replace("</p>", "</p>\n").replace("</li>", "</li>\n").splitlines()
    return "\n".join(text for block in blocks if (text := plain_text(block)))


def _unified(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        fromfile=f"{name} before",
        tofile=f"{name} after",
        lineterm="",
    )
    return "\n".join(lines)
