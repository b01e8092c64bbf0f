"""What search engines read: `robots.txt`, the sitemap of every blog and permalink, and the
Google News sitemap of the last two days.

Both sitemaps depend on the state of the list of blogs (any new blog or logged change in any
blog moves it, as for the index page) and the news one on the time too (entries leave it as
they pass two days): their ETag names both, and each process keeps the last body it built
per sitemap, so crawlers polling every minute cost a 304 or a copy, not a query of entries.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import caching
from app.api.deps import ServicesDep
from app.config import Settings
from app.models import Blog, Entry, Event, utc_now
from app.queries import blogs_version
from app.rendering import entry_path, plain_text, utc_iso

if TYPE_CHECKING:
    from app.services import Services

router = APIRouter(tags=["pages"], include_in_schema=False)

# The sitemap protocol's cap on URLs in one file; past it the oldest permalinks drop out.
SITEMAP_URLS = 50_000
# Google News reads articles of the last two days, at most 1,000 per sitemap.
NEWS_WINDOW = timedelta(days=2)
NEWS_URLS = 1_000
NEWS_TITLE_CHARS = 110
XML = "application/xml; charset=utf-8"
ROBOTS_CACHE_CONTROL = "public, max-age=3600"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"


Build = Callable[[AsyncSession, str, Settings, datetime | None], Awaitable[str]]


@dataclass
class Kept:
    etag: str
    body: bytes


@router.get("/robots.txt")
async def read_robots(services: ServicesDep) -> Response:
    """Crawlers may read pages and feeds; the API and the newsroom are not for them."""
    base = services.settings.public_base_url.rstrip("/")
    text = (
        "User-agent: *\n"
        "Disallow: /api/\n"
        "Disallow: /newsroom\n"
        f"Sitemap: {base}/sitemap.xml\n"
        f"Sitemap: {base}/news-sitemap.xml\n"
    )
    return PlainTextResponse(text, headers={"Cache-Control": ROBOTS_CACHE_CONTROL})


@router.head("/sitemap.xml")
@router.get("/sitemap.xml")
async def read_sitemap(request: Request, services: ServicesDep) -> Response:
    """Every blog's page, then the permalinks of published entries, newest first."""
    return await _respond(request, services, "sitemap", None, _build_sitemap)


@router.head("/news-sitemap.xml")
@router.get("/news-sitemap.xml")
async def read_news_sitemap(request: Request, services: ServicesDep) -> Response:
    """Entries published in the last two days, newest first, as Google News reads them."""
    # By the minute: entries leave the window within a minute of passing two days.
    cutoff = (utc_now() - NEWS_WINDOW).replace(second=0, microsecond=0)
    return await _respond(request, services, "news", cutoff, _build_news_sitemap)


async def _respond(
    request: Request,
    services: "Services",
    name: str,
    cutoff: datetime | None,
    build: Build,
) -> Response:
    # Per app (each process, each test's app), beside its other state.
    state = request.app.state
    if not hasattr(state, "sitemaps"):
        state.sitemaps = {}
    kept_bodies: dict[str, Kept] = state.sitemaps
    async with services.database.read_session() as session:
        listing = await blogs_version(session)
        changed = [m for m in (listing.changed_at, cutoff) if m is not None]
        version = caching.BlogVersion(
            seq=listing.total_seq,
            live=True,
            changed_at=max(changed) if changed else utc_now(),
            epoch=f"{listing.count}.{listing.newest_id}.{cutoff.isoformat() if cutoff else ''}",
        )
        now = utc_now()
        checked = caching.validators(version, name)
        if caching.is_not_modified(request, checked, now=now):
            return caching.not_modified(checked, now=now)
        kept = kept_bodies.get(name)
        if kept is None or kept.etag != checked.etag:
            base = services.settings.public_base_url.rstrip("/")
            body = await build(session, base, services.settings, cutoff)
            kept = kept_bodies[name] = Kept(checked.etag, body.encode())
    return caching.full(caching.Representation(kept.body, XML), checked, now=now)


def _blog_changes() -> Any:
    """Each blog with when its newest change was logged (its creation while its log is empty)."""
    changed_at = func.coalesce(Event.created_at, Blog.created_at)
    return (
        select(Blog.slug, changed_at)
        .outerjoin(Event, and_(Event.blog_id == Blog.id, Event.seq == Blog.head_seq))
        .where(Blog.noindex.is_(False))
        .order_by(changed_at.desc(), Blog.id.desc())
    )


async def _build_sitemap(
    session: AsyncSession, base: str, _settings: Settings, _cutoff: datetime | None
) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<urlset xmlns="{SITEMAP_NS}">']
    blogs = (await session.execute(_blog_changes().limit(SITEMAP_URLS))).all()
    for slug, changed_at in blogs:
        lines.append(_url(f"{base}/blogs/{slug}", changed_at))
    entries = await session.execute(
        select(Blog.slug, Entry.id, Entry.updated_at)
        .join(Blog, Blog.id == Entry.blog_id)
        .where(Entry.status == "published", Blog.noindex.is_(False))
        .order_by(Entry.published_at.desc(), Entry.id.desc())
        .limit(SITEMAP_URLS - len(blogs))
    )
    for slug, entry_id, updated_at in entries:
        lines.append(_url(base + entry_path(slug, entry_id), updated_at))
    lines.append("</urlset>\n")
    return "\n".join(lines)


def _url(location: str, modified: datetime) -> str:
    return f"<url><loc>{escape(location)}</loc><lastmod>{utc_iso(modified)}</lastmod></url>"


async def _build_news_sitemap(
    session: AsyncSession, base: str, settings: Settings, cutoff: datetime | None
) -> str:
    if cutoff is None:
        raise ValueError("the news sitemap needs the start of its window")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<urlset xmlns="{SITEMAP_NS}" xmlns:news="{NEWS_NS}">',
    ]
    now = utc_now()
    entries = await session.execute(
        select(Blog.slug, Blog.title, Entry.id, Entry.headline, Entry.body_html, Entry.published_at)
        .join(Blog, Blog.id == Entry.blog_id)
        # A scheduled time still to come is not news yet (nor public).
        .where(
            Entry.status == "published",
            Entry.published_at >= cutoff,
            Entry.published_at <= now,
            Blog.noindex.is_(False),
        )
        .order_by(Entry.published_at.desc(), Entry.id.desc())
        .limit(NEWS_URLS)
    )
    publication = (
        f"<news:publication><news:name>{escape(settings.site_name)}</news:name>"
        f"<news:language>{escape(settings.site_language)}</news:language></news:publication>"
    )
    for slug, blog_title, entry_id, headline, body_html, published_at in entries:
        title = headline or plain_text(body_html, NEWS_TITLE_CHARS) or blog_title
        lines.append(
            f"<url><loc>{escape(base + entry_path(slug, entry_id))}</loc><news:news>"
            f"{publication}<news:publication_date>{utc_iso(published_at)}"
            f"</news:publication_date><news:title>{escape(title)}</news:title>"
            "</news:news></url>"
        )
    lines.append("</urlset>\n")
    return "\n".join(lines)
