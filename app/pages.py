"""The reader page, the embeddable fragment, the index of blogs and the newsroom page:
server-rendered HTML.

The page is complete without JavaScript; `web/static/bulletin.js` then keeps it
current from the stream, starting at the head seq the page was rendered with.
The head is read before the entries, so anything committed in between is
replayed to the client (which applies events idempotently) rather than lost.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import caching
from app.api.deps import RendererDep, ServicesDep
from app.config import Settings
from app.cursors import InvalidCursor, cursor_including, decode_entry_cursor, entry_cursor
from app.embeds.cards import shared_content
from app.errors import BulletinError, Gone, NotFound
from app.models import MAX_INT, Blog, Event, utc_now
from app.queries import (
    BlogListed,
    EntryFilter,
    blogs_version,
    count_published,
    find_blog,
    find_entry,
    list_blogs_by_change,
    list_entries,
    tag_counts,
    to_blog_public,
    to_entry_public,
)
from app.rendering import Renderer, absolute_url, plain_text, utc_iso
from app.schemas import (
    MAX_TAG_CHARS,
    TAG_RE,
    BlogPublic,
    EntryPublic,
    MediaPublic,
    normalise_tag,
)

router = APIRouter(tags=["pages"], include_in_schema=False)

PAGE_SIZE = 20
KEY_EVENTS_SHOWN = 30
# The reader page shows the newest few key events; "Show all N" unfolds the rest.
KEY_EVENTS_FOLDED = 5
# A live page open all day keeps this many entries; older ones stay a link away.
ENTRIES_KEPT = 200
DESCRIPTION_CHARS = 300
# The filter bar offers the blog's most used tags.
TAGS_SHOWN = 12
# The live card: the newest few headlines.
CARD_ENTRIES = 5
# The embed's and the card's own styles, for partners' pages that do not load bulletin.css.
EMBED_STYLESHEET = "/static/embed.css"
# "N reading now" changes by the second; a cache may share one count this long.
READING_NOW_CACHE_CONTROL = "public, max-age=10"
# A deleted entry stays deleted (restoring one is refused): caches may keep its 410 a while.
GONE_CACHE_CONTROL = "public, max-age=300"


@dataclass
class KeyEventLink:
    entry: EntryPublic
    href: str


@dataclass(frozen=True)
class PageView:
    """How a reader asked to see the blog: newest first (the default) or oldest first, all
    entries or those of one tag. Each view is its own URL, with its own ETag and pages."""

    oldest_first: bool = False
    tag: str | None = None

    def query(self, cursor: str | None = None) -> str:
        """The query string of this view at the page that starts past `cursor`: "" or
        "?order=oldest&tag=...&after=..."."""
        params: dict[str, str] = {}
        if self.oldest_first:
            params["order"] = "oldest"
        if self.tag:
            params["tag"] = self.tag
        if cursor is not None:
            params["after" if self.oldest_first else "before"] = cursor
        return f"?{urlencode(params)}" if params else ""

    def with_tag(self, tag: str | None) -> "PageView":
        return PageView(oldest_first=self.oldest_first, tag=tag)

    def toggled(self) -> "PageView":
        return PageView(oldest_first=not self.oldest_first, tag=self.tag)


class InvalidView(BulletinError):
    code = "invalid_view"


def page_view(
    order: str | None, tag: str | None, before: str | None, after: str | None
) -> PageView:
    """The view a reader page's query names; InvalidView for one no link of ours makes."""
    if order not in (None, "newest", "oldest"):
        raise InvalidView("Updates are shown newest or oldest first.")
    oldest_first = order == "oldest"
    if (before is not None and oldest_first) or (after is not None and not oldest_first):
        raise InvalidView("That page link is not valid.")
    if tag is not None and (len(tag) > MAX_TAG_CHARS or not TAG_RE.match(tag)):
        raise InvalidView("That is not a tag.")
    return PageView(oldest_first, normalise_tag(tag) if tag is not None else None)


@dataclass
class PageContent:
    blog: BlogPublic
    head_seq: int
    pinned: EntryPublic | None
    entries: list[EntryPublic]
    older_cursor: str | None
    key_events: list[KeyEventLink]
    is_latest: bool
    view: PageView = PageView()
    # (tag, published entries with it), most used first, and all published entries.
    tags: list[tuple[str, int]] = field(default_factory=list)
    total: int = 0

    @property
    def is_live(self) -> bool:
        """Whether bulletin.js keeps the page live: newest first only the latest page is (an
        older one is an archive); oldest first every page is (new entries join the last)."""
        return self.is_latest or self.view.oldest_first


async def load_page(
    session: AsyncSession,
    blog: Blog,
    before: str | None,
    renderer: Renderer,
    view: PageView = PageView(),
) -> PageContent:
    """Everything one reader page shows; the head first (see the module docstring).
    `before` is the page's cursor: where it starts past, in the order of its `view`."""
    head_seq = blog.head_seq
    public = await to_blog_public(session, blog)
    shown = EntryFilter(tag=view.tag, oldest_first=view.oldest_first)
    page = await list_entries(session, blog, limit=PAGE_SIZE, before=before, filter=shown)
    pinned = None
    if public.pinned_entry_id is not None and before is None:
        pinned = next((e for e in page.items if e.id == public.pinned_entry_id), None)
        if pinned is None:  # pinned long ago: it still leads the page
            entry = await find_entry(session, blog, public.pinned_entry_id, include_drafts=False)
            pinned = to_entry_public(entry, blog.slug)
            if view.tag is not None and view.tag not in (pinned.tags or []):
                pinned = None  # a filtered page leads with its own tag's pinned entry only
    key_page = await list_entries(
        session, blog, limit=KEY_EVENTS_SHOWN, before=None, filter=EntryFilter(True, tag=view.tag)
    )
    # Every key event links to its permalink; bulletin.js scrolls instead when it is here.
    key_events = [
        KeyEventLink(entry=entry, href=renderer.permalink(blog.slug, entry.id))
        for entry in key_page.items
    ]
    return PageContent(
        blog=public,
        head_seq=head_seq,
        pinned=pinned,
        entries=[entry for entry in page.items if pinned is None or entry.id != pinned.id],
        older_cursor=page.next_cursor,
        key_events=key_events,
        is_latest=before is None,
        view=view,
        tags=await tag_counts(session, blog, TAGS_SHOWN),
        total=await count_published(session, blog),
    )


def publisher_json_ld(settings: Settings, renderer: Renderer) -> dict[str, Any]:
    """The publication as schema.org names it: the masthead's name and logo."""
    publisher: dict[str, Any] = {
        "@type": "NewsMediaOrganization",
        "name": settings.site_name,
        "url": renderer.base_url + "/",
    }
    if settings.site_logo_url:
        publisher["logo"] = {
            "@type": "ImageObject",
            "url": renderer.absolute(settings.site_logo_url),
        }
    return publisher


def shown_modified(entry: EntryPublic) -> datetime:
    """When readers were last told the entry changed: its "Updated", else its publishing."""
    return entry.modified_at or entry.published_at


def live_blog_json_ld(
    content: PageContent, page_url: str, renderer: Renderer, settings: Settings
) -> str:
    """schema.org LiveBlogPosting, safe to place inside a <script> element."""
    blog = content.blog
    updates = ([content.pinned] if content.pinned else []) + content.entries
    publisher = publisher_json_ld(settings, renderer)
    base_url = renderer.base_url
    image = _first_image(content, renderer.base_url)
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": page_url,
        "url": page_url,
        "mainEntityOfPage": {"@type": "WebPage", "@id": page_url},
        "headline": blog.title,
        "description": plain_text(blog.summary, DESCRIPTION_CHARS),
        "datePublished": utc_iso(blog.coverage_start),
        # The blog as a whole is the publication's; each update names its own writers.
        "author": [publisher],
        "publisher": publisher,
        **({"image": [image]} if image else {}),
        "coverageStartTime": utc_iso(blog.coverage_start),
        # The blog changed when it did, or when readers were last told an entry did.
        "dateModified": utc_iso(max([blog.updated_at, *map(shown_modified, updates)])),
        "keywords": blog.topics,
        "liveBlogUpdate": [
            {
                "@type": "BlogPosting",
                "@id": renderer.permalink(blog.slug, entry.id),
                "url": renderer.permalink(blog.slug, entry.id),
                "headline": entry.headline or plain_text(entry.body, 110),
                "articleBody": plain_text(entry.body, 5000),
                "datePublished": utc_iso(entry.published_at),
                "dateModified": utc_iso(shown_modified(entry)),
                "author": [{"@type": "Person", "name": a.name} for a in entry.authors],
                **(
                    {"image": [renderer.absolute(m.url) for m in entry.media if is_image(m)]}
                    if any(is_image(m) for m in entry.media)
                    else {}
                ),
                **(
                    {"sharedContent": shared}
                    if (shared := [c for m in entry.media if (c := shared_content(m, base_url))])
                    else {}
                ),
            }
            for entry in updates
        ],
    }
    if blog.coverage_end is not None:
        data["coverageEndTime"] = utc_iso(blog.coverage_end)
    # "</script>" inside a string must not end the element.
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _masthead(settings: Settings, renderer: Renderer) -> dict[str, str | None]:
    logo = settings.site_logo_url
    return {"name": settings.site_name, "logo": renderer.absolute(logo) if logo else None}


def _live_part(settings: Settings, renderer: Renderer, language: str) -> dict[str, Any]:
    """What partials/live.html needs, in the blog's `language`; bulletin.js reads these
    numbers (and its words) from the page it renders."""
    return {
        **renderer.speaking_to_scripts(language),
        "heartbeat_seconds": settings.heartbeat_seconds,
        "max_entries": ENTRIES_KEPT,
        "max_key_events": KEY_EVENTS_SHOWN,
        "render_entry": renderer.render_entry,
        "render_key_event": renderer.render_key_event,
    }


def _page(
    settings: Settings, renderer: Renderer, content: PageContent, page_url: str, **own: Any
) -> caching.Representation:
    """The reader page (page.html) of `content`; a permalink gives its `own` title and card."""
    base_url = renderer.base_url
    values: dict[str, Any] = {
        "description": plain_text(content.blog.summary, DESCRIPTION_CHARS) or content.blog.title,
        "og_image": _first_image(content, base_url),
        **own,
    }
    return _html(
        renderer.environment.get_template("page.html").render(
            content=content,
            page_url=page_url,
            base_url=base_url,
            json_ld=live_blog_json_ld(content, page_url, renderer, settings),
            site=_masthead(settings, renderer),
            fold_key_events=KEY_EVENTS_FOLDED,
            **values,
            **_live_part(settings, renderer, content.blog.language),
        )
    )


def _html_error(renderer: Renderer, status: int, title: str, message: str) -> HTMLResponse:
    body = renderer.environment.get_template("error.html").render(title=title, message=message)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _html(body: str) -> caching.Representation:
    return caching.Representation(body.encode(), "text/html; charset=utf-8")


@router.head("/blogs/{slug}")  # link checkers and CDNs look before they fetch
@router.get("/blogs/{slug}", response_class=HTMLResponse)
async def read_page(
    request: Request,
    services: ServicesDep,
    slug: str,
    before: Annotated[str | None, Query()] = None,
    after: Annotated[str | None, Query()] = None,
    order: Annotated[str | None, Query()] = None,
    tag: Annotated[str | None, Query()] = None,
) -> Response:
    """The reader page: complete without JavaScript, kept live by bulletin.js. `order=oldest`
    shows it oldest first (paged with `after`), `tag=` only the entries of one tag."""
    renderer, settings = services.renderer, services.settings
    base_url = settings.public_base_url.rstrip("/")
    page_url = f"{base_url}/blogs/{slug}"
    try:
        view = page_view(order, tag, before, after)
    except InvalidView as error:
        return _html_error(renderer, 400, "Page not found", error.message)
    cursor = after if view.oldest_first else before

    async def build(session: AsyncSession, blog: Blog) -> caching.Representation:
        content = await load_page(session, blog, cursor, renderer, view)
        return _page(settings, renderer, content, page_url)

    try:
        # Pages of a live blog are shared by every reader: 304s and kept bodies from memory.
        return await caching.respond(
            request,
            slug,
            build,
            variant=f"page?before={before}" if view == PageView() else f"page{view.query(cursor)}",
            keep_body=True,
        )
    except InvalidCursor:
        return _html_error(renderer, 400, "Page not found", "That page link is not valid.")
    except BulletinError as error:
        return _html_error(renderer, error.status, "Page not found", "There is no such live blog.")


async def was_deleted_in_public(session: AsyncSession, blog: Blog, entry_id: int) -> bool:
    """Whether the blog's log holds the tombstone of this entry: it was public once."""
    tombstone = select(Event.id).where(
        Event.blog_id == blog.id, Event.entry_id == entry_id, Event.type == "entry.deleted"
    )
    return bool(0 < entry_id <= MAX_INT and await session.scalar(select(exists(tombstone))))


async def load_entry_page(
    session: AsyncSession, blog: Blog, entry_id: int, renderer: Renderer
) -> tuple[PageContent, EntryPublic]:
    """The page of the blog that holds this published entry: the latest (live) page when it
    is there, else the older page that starts with it."""
    try:
        entry = await find_entry(session, blog, entry_id, include_drafts=False)
    except NotFound:
        if await was_deleted_in_public(session, blog, entry_id):
            raise Gone(f"Entry {entry_id} of '{blog.slug}' was deleted.") from None
        raise
    content = await load_page(session, blog, None, renderer)
    shown = [content.pinned] if content.pinned else []
    if not any(shown_entry.id == entry.id for shown_entry in shown + content.entries):
        before = cursor_including(entry.published_at, entry.id)
        content = await load_page(session, blog, before, renderer)
    return content, to_entry_public(entry, blog.slug)


@router.head("/blogs/{slug}/entries/{entry_id}")
@router.get("/blogs/{slug}/entries/{entry_id}", response_class=HTMLResponse)
async def read_entry_page(
    request: Request, services: ServicesDep, slug: str, entry_id: str
) -> Response:
    """An entry's permalink: the blog's page that holds it, scrolled to it by bulletin.js,
    with the entry's own title, description and card for links shared anywhere."""
    renderer, settings = services.renderer, services.settings
    base_url = settings.public_base_url.rstrip("/")
    page_url = f"{base_url}/blogs/{slug}"
    if not entry_id.isascii() or not entry_id.isdigit():
        return _html_error(renderer, 404, "Page not found", "There is no such update.")

    async def build(session: AsyncSession, blog: Blog) -> caching.Representation:
        content, entry = await load_entry_page(session, blog, int(entry_id), renderer)
        text = plain_text(entry.body, DESCRIPTION_CHARS)
        headline = entry.headline or plain_text(entry.body, 80) or content.blog.title
        image = next((renderer.absolute(m.url) for m in entry.media if is_image(m)), None)
        return _page(
            settings,
            renderer,
            content,
            page_url,
            title=f"{headline} - {content.blog.title}",
            share_title=headline,
            canonical_url=renderer.permalink(slug, entry.id),
            focus_entry=entry.id,
            description=text or headline,
            og_image=image or _first_image(content, renderer.base_url),
        )

    try:
        return await caching.respond(
            request, slug, build, variant=f"entry/{entry_id}", keep_body=True
        )
    except Gone:
        body = renderer.environment.get_template("error.html").render(
            title="Update deleted",
            message="This update was deleted.",
            link=page_url,
            link_text="Read the latest updates",
        )
        return HTMLResponse(body, status_code=410, headers={"Cache-Control": GONE_CACHE_CONTROL})
    except BulletinError as error:
        return _html_error(renderer, error.status, "Page not found", "There is no such update.")


@router.get("/blogs/{slug}/embed", response_class=HTMLResponse)
async def read_embed(request: Request, services: ServicesDep, slug: str) -> Response:
    """The live part of the page as an HTML fragment, for the embed script on other sites."""
    renderer, settings = services.renderer, services.settings
    base_url = settings.public_base_url.rstrip("/")

    async def build(session: AsyncSession, blog: Blog) -> caching.Representation:
        content = await load_page(session, blog, None, renderer)
        return _html(
            renderer.environment.get_template("embed.html").render(
                content=content,
                page_url=f"{base_url}/blogs/{slug}",
                embed_stylesheet=f"{base_url}{EMBED_STYLESHEET}",
                **_live_part(settings, renderer, content.blog.language),
            )
        )

    try:
        return await caching.respond(request, slug, build, variant="embed", keep_body=True)
    except BulletinError:
        # Plain text: the embed script shows it as text in the partner's page.
        return PlainTextResponse(
            "There is no such live blog.", 404, headers={"Cache-Control": "no-store"}
        )


@router.get("/blogs/{slug}/card", response_class=HTMLResponse)
async def read_card(request: Request, services: ServicesDep, slug: str) -> Response:
    """The live card for front pages and partners' articles: an HTML fragment of the newest
    few headlines with their times, each linking to its permalink; bulletin.js keeps it live
    (`data-bulletin-mode="card"`)."""
    renderer, settings = services.renderer, services.settings
    base_url = settings.public_base_url.rstrip("/")

    async def build(session: AsyncSession, blog: Blog) -> caching.Representation:
        head_seq = blog.head_seq  # before the entries, as the page (module docstring)
        public = await to_blog_public(session, blog)
        newest = await list_entries(
            session, blog, limit=CARD_ENTRIES, before=None, filter=EntryFilter()
        )
        return _html(
            renderer.environment.get_template("card.html").render(
                blog=public,
                head_seq=head_seq,
                entries=newest.items,
                page_url=f"{base_url}/blogs/{slug}",
                embed_stylesheet=f"{base_url}{EMBED_STYLESHEET}",
                heartbeat_seconds=settings.heartbeat_seconds,
                max_lines=CARD_ENTRIES,
                render_line=renderer.render_key_event,
                **renderer.speaking_to_scripts(public.language),
            )
        )

    try:
        return await caching.respond(request, slug, build, variant="card", keep_body=True)
    except BulletinError:
        return PlainTextResponse(
            "There is no such live blog.", 404, headers={"Cache-Control": "no-store"}
        )


@router.get("/blogs/{slug}/tags")
async def read_tag_counts(request: Request, services: ServicesDep, slug: str) -> Response:
    """The filter bar's numbers, as the page shows them: the blog's published entries and
    its most used tags with theirs, at the head `seq` they were counted at. reader.js asks
    again as entries change; every reader shares one answer, kept until the blog changes."""

    async def build(session: AsyncSession, blog: Blog) -> caching.Representation:
        head_seq = blog.head_seq  # before the counts, as the page (module docstring)
        counts = {
            "seq": head_seq,
            "total": await count_published(session, blog),
            "tags": [
                {"tag": tag, "count": count}
                for tag, count in await tag_counts(session, blog, TAGS_SHOWN)
            ],
        }
        return caching.Representation(json.dumps(counts).encode(), "application/json")

    return await caching.respond(request, slug, build, variant="tags", keep_body=True)


def rounded_readers(count: int) -> int | None:
    """What readers are told of how many read with them: two significant digits (1,234 is
    1,200), and nothing below ten (a handful is no crowd, and would name too few)."""
    if count < 10:
        return None
    scale = int("1" + "0" * (len(str(count)) - 2))
    return (count + scale // 2) // scale * scale


@router.get("/blogs/{slug}/reading-now")
async def read_reading_now(services: ServicesDep, slug: str) -> Response:
    """ "N reading now" of a blog whose newsroom chose to show it, rounded; shared by every
    reader (a short max-age). 404 for a blog that does not show it."""
    async with services.database.read_session() as session:
        blog = await find_blog(session, slug)
    if not blog.show_readers_count:
        raise NotFound(f"Blog '{slug}' does not show its readers count.")
    now = services.audience.readers(blog.slug, blog.id, blog.timezone).now
    return JSONResponse(
        {"reading_now": rounded_readers(now)},
        headers={"Cache-Control": READING_NOW_CACHE_CONTROL},
    )


@router.get("/newsroom", response_class=HTMLResponse)
async def read_newsroom(renderer: RendererDep) -> HTMLResponse:
    """A small composer for reporters: publish, edit and delete through the public API."""
    body = renderer.environment.get_template("newsroom.html").render()
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def is_image(item: MediaPublic) -> bool:
    return item.kind == "image"


def _first_image(content: PageContent, base_url: str) -> str | None:
    for entry in ([content.pinned] if content.pinned else []) + content.entries:
        for item in entry.media:
            if is_image(item):
                return absolute_url(base_url, item.url)
    return None


# --- the index of blogs ---------------------------------------------------------------

# Live blogs are few at a time; past this many the index shows the most recently changed.
LIVE_BLOGS_SHOWN = 100
ENDED_BLOGS_PAGE = 50
# Last-Modified of an index with no blogs.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# `/blogs` will always be another name of `/`.
REDIRECT_CACHE_CONTROL = "public, max-age=86400"


@dataclass
class IndexContent:
    live: list[BlogListed]
    more_live: bool
    ended: list[BlogListed]
    older_cursor: str | None
    is_first: bool


async def load_index(session: AsyncSession, before: str | None) -> IndexContent:
    """The first page: every live blog (up to a cap), then the newest page of ended ones; an
    older page (`before`): the next page of ended blogs. Each list by last change."""
    live: list[BlogListed] = []
    if before is None:
        live = await list_blogs_by_change(session, status="live", limit=LIVE_BLOGS_SHOWN + 1)
    # Cursors have the form of entry cursors: a moment and an id.
    after = decode_entry_cursor(before) if before is not None else None
    ended = await list_blogs_by_change(
        session, status="ended", limit=ENDED_BLOGS_PAGE + 1, before=after
    )
    older_cursor = None
    if len(ended) > ENDED_BLOGS_PAGE:
        last = ended[ENDED_BLOGS_PAGE - 1]
        older_cursor = entry_cursor(last.changed_at, last.id)
    return IndexContent(
        live=live[:LIVE_BLOGS_SHOWN],
        more_live=len(live) > LIVE_BLOGS_SHOWN,
        ended=ended[:ENDED_BLOGS_PAGE],
        older_cursor=older_cursor,
        is_first=before is None,
    )


@router.head("/")
@router.get("/", response_class=HTMLResponse)
async def read_index(
    request: Request,
    services: ServicesDep,
    before: Annotated[str | None, Query()] = None,
) -> Response:
    """The index of blogs: live ones first, then ended ones, each by its last change."""
    renderer, settings = services.renderer, services.settings
    base_url = settings.public_base_url.rstrip("/")
    async with services.database.read_session() as session:
        # Every blog's head at once, as the API's list of blogs: a new blog, or any change
        # logged in any blog (an entry, an edit, the blog itself), gives a new ETag.
        listing = await blogs_version(session)
        version = caching.BlogVersion(
            seq=listing.total_seq,
            live=True,
            changed_at=listing.changed_at or NEVER,
            epoch=f"{listing.count}.{listing.newest_id}",
        )
        now = utc_now()
        checked = caching.validators(version, caching.known_url(request))
        if caching.is_not_modified(request, checked, now=now):
            return caching.not_modified(checked, now=now)
        try:
            content = await load_index(session, before)
        except InvalidCursor:
            return _html_error(renderer, 400, "Page not found", "That page link is not valid.")
    page = "/" if before is None else f"/?{urlencode({'before': before})}"
    body = renderer.environment.get_template("index.html").render(
        content=content,
        canonical_url=f"{base_url}{page}",
        summary_of=lambda blog: plain_text(blog.summary_html, DESCRIPTION_CHARS),
    )
    return caching.full(_html(body), checked, now=now)


@router.head("/blogs")
@router.get("/blogs")
async def redirect_to_index(request: Request) -> Response:
    """`/blogs` is another name of the index: a permanent redirect to `/`.

    Its Location is relative (see `redirect_slashes=False` in app/main.py): nothing from the
    request's Host header goes into an answer a cache may keep for everyone.
    """
    query = request.scope["query_string"].decode("latin-1")
    location = f"/?{query}" if query else "/"
    return Response(
        status_code=308, headers={"Location": location, "Cache-Control": REDIRECT_CACHE_CONTROL}
    )
