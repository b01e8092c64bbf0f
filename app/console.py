"""The operator console's figures: the blogs live now, with what an operator watches.

Per blog: readers now over every process (app/realtime/audience.py), entries published in
the last 5 and 60 minutes, how far the slowest process's readers are behind the head,
the webhooks' backlog and failures, and whether the kill switch is on (app/stopping.py).
Three queries per answer, whatever the number of blogs (at most MAX_BLOGS, most read
first); the page (app/api/console.py) asks again every few seconds.
"""

import hashlib
from datetime import timedelta

from pydantic import BaseModel, Field
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Blog, Entry, Webhook, utc_now
from app.services import Services

MAX_BLOGS = 200


class ConsoleBlogPublic(BaseModel):
    slug: str
    title: str
    head_seq: int
    readers_now: int = Field(description="Open public streams over every process.")
    entries_last_5_minutes: int
    entries_last_60_minutes: int
    lag_events: int = Field(
        description="Events the slowest process's readers are behind the head (0 without readers)."
    )
    webhooks: int = Field(description="Active webhooks of the blog.")
    webhook_backlog_events: int = Field(description="Events not yet delivered, summed over them.")
    webhook_failures: int = Field(description="The most failed attempts in a row among them.")
    streams_stopped: bool


class ConsolePublic(BaseModel):
    blogs: list[ConsoleBlogPublic]

    def etag(self) -> str:
        """Names these figures: an unchanged answer is a 304 to the page that polls."""
        return '"' + hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:32] + '"'


async def _published_counts(
    session: AsyncSession, blog_ids: list[int]
) -> dict[int, tuple[int, int]]:
    now = utc_now()
    five_minutes_ago, an_hour_ago = now - timedelta(minutes=5), now - timedelta(minutes=60)
    rows = await session.execute(
        select(
            Entry.blog_id,
            func.sum(case((Entry.published_at >= five_minutes_ago, 1), else_=0)),
            func.count(),
        )
        .where(
            Entry.blog_id.in_(blog_ids),
            Entry.status == "published",
            Entry.deleted_at.is_(None),
            Entry.published_at >= an_hour_ago,
            Entry.published_at <= now,
        )
        .group_by(Entry.blog_id)
    )
    return {blog_id: (int(last_5), int(last_60)) for blog_id, last_5, last_60 in rows}


async def _webhook_standings(
    session: AsyncSession, blog_ids: list[int]
) -> dict[int, tuple[int, int, int]]:
    rows = await session.execute(
        select(
            Webhook.blog_id,
            func.count(),
            func.sum(Blog.head_seq - Webhook.delivered_seq),
            func.max(Webhook.consecutive_failures),
        )
        .join(Blog, Blog.id == Webhook.blog_id)
        .where(Webhook.blog_id.in_(blog_ids), Webhook.active.is_(True))
        .group_by(Webhook.blog_id)
    )
    return {
        blog_id: (int(count), max(0, int(backlog or 0)), int(failures or 0))
        for blog_id, count, backlog, failures in rows
    }


async def console_figures(services: Services) -> ConsolePublic:
    """The live blogs, most read first, with their figures now."""
    async with services.database.read_session() as session:
        blogs = list(
            await session.scalars(
                select(Blog).where(Blog.status == "live").order_by(Blog.id.desc()).limit(MAX_BLOGS)
            )
        )
        ids = [blog.id for blog in blogs]
        published = await _published_counts(session, ids) if ids else {}
        webhooks = await _webhook_standings(session, ids) if ids else {}
    audience = services.audience
    figures = []
    for blog in blogs:
        readers = audience.readers(blog.slug, blog.id, blog.timezone).now
        slowest = audience.slowest_delivery(blog.slug, blog.id)
        count, backlog, failures = webhooks.get(blog.id, (0, 0, 0))
        last_5, last_60 = published.get(blog.id, (0, 0))
        figures.append(
            ConsoleBlogPublic(
                slug=blog.slug,
                title=blog.title,
                head_seq=blog.head_seq,
                readers_now=readers,
                entries_last_5_minutes=last_5,
                entries_last_60_minutes=last_60,
                lag_events=max(0, blog.head_seq - slowest) if slowest is not None else 0,
                webhooks=count,
                webhook_backlog_events=backlog,
                webhook_failures=failures,
                streams_stopped=blog.streams_stopped,
            )
        )
    figures.sort(key=lambda figure: -figure.readers_now)  # stable: newest first among equals
    return ConsolePublic(blogs=figures)
