"""The read side: blogs, pages of entries by cursor, the change log since a seq.

Routes, pages, feeds and the real-time hub all read through here.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar, cast

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cursors import (
    decode_blog_cursor,
    decode_entry_cursor,
    encode_blog_cursor,
    entry_cursor,
)
from app.errors import NotFound
from app.models import MAX_INT, Blog, Entry, EntryTag, Event, Webhook
from app.people.permissions import PRIVATE_STATES
from app.schemas import (
    AuthorPublic,
    BlogPublic,
    BlogStatus,
    CorrectionPublic,
    EntriesPublic,
    EntryPublic,
    EntryState,
    MediaPublic,
    is_slug,
)

OfBlog = TypeVar("OfBlog", Entry, Webhook)


def to_entry_public(entry: Entry, blog_slug: str) -> EntryPublic:
    return EntryPublic(
        id=entry.id,
        blog=blog_slug,
        headline=entry.headline,
        body=entry.body_html,
        authors=[AuthorPublic(**author) for author in entry.authors],
        media=[MediaPublic(**item) for item in entry.media],
        key_event=entry.key_event,
        tags=entry.tags or None,
        pinned=entry.pinned,
        status=cast(EntryState, entry.status),
        published_at=entry.published_at,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        version=entry.version,
        modified_at=entry.modified_at,
        correction=CorrectionPublic(**entry.corrections[-1]) if entry.corrections else None,
        corrections=[CorrectionPublic(**c) for c in entry.corrections] or None,
        # Only a private entry carries its note (and only members read private entries).
        review_note=entry.review_note if entry.status in PRIVATE_STATES else None,
        publish_at=entry.publish_at if entry.status == "scheduled" else None,
    )


async def find_blog(session: AsyncSession, slug: str) -> Blog:
    blog = await session.scalar(select(Blog).where(Blog.slug == slug)) if is_slug(slug) else None
    if blog is None:
        raise NotFound(f"There is no blog '{slug}'.")
    return blog


async def to_blog_public(session: AsyncSession, blog: Blog) -> BlogPublic:
    previous_slug = None
    if blog.previous_blog_id is not None:
        previous_slug = await session.scalar(
            select(Blog.slug).where(Blog.id == blog.previous_blog_id)
        )
    pinned_entry_id = await session.scalar(
        select(Entry.id).where(
            Entry.blog_id == blog.id, Entry.pinned.is_(True), Entry.status == "published"
        )
    )
    return BlogPublic(
        slug=blog.slug,
        title=blog.title,
        summary=blog.summary_html,
        status=cast(BlogStatus, blog.status),
        timezone=blog.timezone,
        language=blog.language,
        coverage_start=blog.coverage_start,
        coverage_end=blog.coverage_end,
        topics=blog.topics,
        previous_slug=previous_slug,
        pinned_entry_id=pinned_entry_id,
        head_seq=blog.head_seq,
        version=blog.version,
        require_alt_text=blog.require_alt_text,
        noindex=blog.noindex,
        show_readers_count=blog.show_readers_count,
        created_at=blog.created_at,
        updated_at=blog.updated_at,
    )


async def list_blogs(
    session: AsyncSession, *, limit: int, before: str | None
) -> tuple[list[BlogPublic], str | None]:
    """Newest blogs first; the cursor is the last blog's id."""
    query = select(Blog).order_by(Blog.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Blog.id < decode_blog_cursor(before))
    blogs = list(await session.scalars(query))
    next_cursor = encode_blog_cursor(blogs[limit - 1].id) if len(blogs) > limit else None
    return [await to_blog_public(session, blog) for blog in blogs[:limit]], next_cursor


@dataclass(frozen=True)
class EntryFilter:
    key_events_only: bool = False
    status: str = "published"
    # Private entries of this writer only (a contributor's own); None: anyone's.
    writer_id: int | None = None
    # Only entries with this (normalised) tag.
    tag: str | None = None
    # Oldest first (archives, Q&A, recaps); the cursor then names where a newer page starts.
    oldest_first: bool = False


async def list_entries(
    session: AsyncSession, blog: Blog, *, limit: int, before: str | None, filter: EntryFilter
) -> EntriesPublic:
    """Entries newest first (by published time, then id), one page at a time; oldest first
    with `filter.oldest_first`, `before` then naming the entry the page starts after."""
    if filter.oldest_first:
        order = (Entry.published_at.asc(), Entry.id.asc())
    else:
        order = (Entry.published_at.desc(), Entry.id.desc())
    query = (
        select(Entry)
        .where(Entry.blog_id == blog.id, Entry.status == filter.status)
        .order_by(*order)
        .limit(limit + 1)
    )
    if filter.key_events_only:
        query = query.where(Entry.key_event.is_(True))
    if filter.writer_id is not None and filter.status in PRIVATE_STATES:
        query = query.where(Entry.created_by == filter.writer_id)
    if filter.tag is not None:
        tagged = select(EntryTag.entry_id).where(
            EntryTag.blog_id == blog.id, EntryTag.tag == filter.tag
        )
        query = query.where(Entry.id.in_(tagged))
    if before is not None:
        published_at, entry_id = decode_entry_cursor(before)
        if filter.oldest_first:
            query = query.where(
                or_(
                    Entry.published_at > published_at,
                    and_(Entry.published_at == published_at, Entry.id > entry_id),
                )
            )
        else:
            query = query.where(
                or_(
                    Entry.published_at < published_at,
                    and_(Entry.published_at == published_at, Entry.id < entry_id),
                )
            )
    entries = list(await session.scalars(query))
    next_cursor = None
    if len(entries) > limit:
        last = entries[limit - 1]
        next_cursor = entry_cursor(last.published_at, last.id)
    return EntriesPublic(
        items=[to_entry_public(entry, blog.slug) for entry in entries[:limit]],
        next_cursor=next_cursor,
    )


async def count_published(session: AsyncSession, blog: Blog) -> int:
    """How many entries of the blog are public now."""
    number = await session.scalar(
        select(func.count(Entry.id)).where(Entry.blog_id == blog.id, Entry.status == "published")
    )
    return number or 0


async def tag_counts(session: AsyncSession, blog: Blog, limit: int) -> list[tuple[str, int]]:
    """(tag, published entries with it) of the blog's most used tags, most used first."""
    count = func.count(EntryTag.entry_id)
    rows = await session.execute(
        select(EntryTag.tag, count)
        .join(Entry, Entry.id == EntryTag.entry_id)
        .where(EntryTag.blog_id == blog.id, Entry.status == "published")
        .group_by(EntryTag.tag)
        .order_by(count.desc(), EntryTag.tag)
        .limit(limit)
    )
    return [(tag, number) for tag, number in rows]


async def find_in_blog(
    session: AsyncSession, kind: type[OfBlog], blog: Blog, item_id: int, *, what: str
) -> OfBlog:
    """The blog's entry or webhook with this id; NotFound for any other (or impossible) id."""
    found = (
        await session.scalar(select(kind).where(kind.id == item_id, kind.blog_id == blog.id))
        if 0 < item_id <= MAX_INT
        else None
    )
    if found is None:
        raise NotFound(f"Blog '{blog.slug}' has no {what} {item_id}.")
    return found


async def find_entry(
    session: AsyncSession,
    blog: Blog,
    entry_id: int,
    *,
    include_drafts: bool,
    writer_id: int | None = None,
) -> Entry:
    """A published entry; with `include_drafts`, a private one too (draft, submitted,
    returned), of `writer_id` only when given."""
    visible: ColumnElement[bool] = Entry.status == "published"
    if include_drafts:
        private: ColumnElement[bool] = Entry.status.in_(PRIVATE_STATES)
        if writer_id is not None:
            private = and_(private, Entry.created_by == writer_id)
        visible = or_(visible, private)
    entry = (
        None
        if not 0 < entry_id <= MAX_INT
        else await session.scalar(
            select(Entry).where(Entry.id == entry_id, Entry.blog_id == blog.id, visible)
        )
    )
    if entry is None:
        raise NotFound(f"Blog '{blog.slug}' has no entry {entry_id}.")
    return entry


async def event_payloads_since(
    session: AsyncSession, blog_id: int, since: int, limit: int
) -> list[tuple[int, bytes]]:
    """(seq, wire bytes) of the events after `since`, oldest first."""
    rows = await session.execute(
        select(Event.seq, Event.payload)
        .where(Event.blog_id == blog_id, Event.seq > since)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [(seq, bytes(payload)) for seq, payload in rows]


class BlogHead(NamedTuple):
    seq: int
    streams_stopped: bool


async def blog_heads(session: AsyncSession, blog_ids: list[int]) -> dict[int, BlogHead]:
    """The newest seq of each of these blogs, and whether its streams are stopped."""
    rows = await session.execute(
        select(Blog.id, Blog.head_seq, Blog.streams_stopped).where(Blog.id.in_(blog_ids))
    )
    return {blog_id: BlogHead(head, stopped) for blog_id, head, stopped in rows}


async def latest_event_payloads(
    session: AsyncSession, blog_id: int, count: int
) -> list[tuple[int, bytes]]:
    """(seq, wire bytes) of the newest `count` events, oldest first."""
    rows = await session.execute(
        select(Event.seq, Event.payload)
        .where(Event.blog_id == blog_id)
        .order_by(Event.seq.desc())
        .limit(count)
    )
    return [(seq, bytes(payload)) for seq, payload in reversed(rows.all())]


async def head_changed_at(session: AsyncSession, blog: Blog) -> datetime:
    """When the blog's newest change was logged; its creation while the log is empty."""
    if blog.head_seq == 0:
        return blog.created_at
    changed_at = await session.scalar(
        select(Event.created_at).where(Event.blog_id == blog.id, Event.seq == blog.head_seq)
    )
    return changed_at or blog.created_at


@dataclass(frozen=True)
class BlogsVersion:
    """The state of the list of blogs: any new blog or change to one moves `total_seq`."""

    count: int
    newest_id: int
    total_seq: int
    changed_at: datetime | None


async def blogs_version(session: AsyncSession) -> BlogsVersion:
    """Reads blog rows and one log row per blog (its head), never entries."""
    head_event = and_(Event.blog_id == Blog.id, Event.seq == Blog.head_seq)
    count, newest_id, total_seq, created_at, logged_at = (
        await session.execute(
            select(
                func.count(Blog.id),
                func.coalesce(func.max(Blog.id), 0),
                func.coalesce(func.sum(Blog.head_seq), 0),
                func.max(Blog.created_at),
                func.max(Event.created_at),
            ).outerjoin(Event, head_event)
        )
    ).one()
    moments = [moment for moment in (created_at, logged_at) if moment is not None]
    return BlogsVersion(count, newest_id, total_seq, max(moments) if moments else None)


async def recent_deletions(
    session: AsyncSession, blog: Blog, window: int
) -> list[tuple[int, datetime]]:
    """(entry id, when) of entries taken out of public view among the newest `window`
    changes of the log and still out of it, newest first."""
    when = func.max(Event.created_at)
    rows = await session.execute(
        select(Event.entry_id, when)
        .join(Entry, Entry.id == Event.entry_id)
        .where(
            Event.blog_id == blog.id,
            Event.seq > blog.head_seq - window,
            Event.type == "entry.deleted",
            Entry.status != "published",
        )
        .group_by(Event.entry_id)
        .order_by(when.desc(), Event.entry_id.desc())
    )
    # Deletion events always name their entry.
    return [(entry_id, moment) for entry_id, moment in rows if entry_id is not None]


@dataclass(frozen=True)
class BlogListed:
    """A blog as the index of blogs shows it: no entries, nothing private."""

    id: int
    slug: str
    title: str
    summary_html: str
    status: BlogStatus
    timezone: str
    # When its newest change was logged (its creation while its log is empty).
    changed_at: datetime


async def list_blogs_by_change(
    session: AsyncSession,
    *,
    status: BlogStatus,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> list[BlogListed]:
    """Blogs of one status, most recently changed first (then newest id), after `before`
    (changed_at, id) when given: one query, blog rows and each one's head log row."""
    changed_at = func.coalesce(Event.created_at, Blog.created_at)
    query = (
        select(Blog, changed_at)
        .outerjoin(Event, and_(Event.blog_id == Blog.id, Event.seq == Blog.head_seq))
        .where(Blog.status == status)
        .order_by(changed_at.desc(), Blog.id.desc())
        .limit(limit)
    )
    if before is not None:
        moment, blog_id = before
        query = query.where(or_(changed_at < moment, and_(changed_at == moment, Blog.id < blog_id)))
    return [
        BlogListed(
            id=blog.id,
            slug=blog.slug,
            title=blog.title,
            summary_html=blog.summary_html,
            status=cast(BlogStatus, blog.status),
            timezone=blog.timezone,
            changed_at=moment,
        )
        for blog, moment in (await session.execute(query)).all()
    ]
