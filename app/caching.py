"""HTTP caching of public reads: validators from the blog's head seq, 304s from memory.

Everything a public read of a blog shows is a function of its change log up to the
head `seq`, so the head names the state. The ETag is the head plus the request's
variant (its path and query, or what the route names); Last-Modified is the end of the
second in which the head change was logged, sent only once LAST_MODIFIED_DELAY has passed
after it. A change is stamped with its writer's clock before it commits, so a later change
may carry a date inside a second already over; the delay, longer than a commit plus the
clock skew between processes, keeps such a change from hiding behind a date already sent.
Both are the same for every client: pollers and CDNs share one cached answer.

Routes answer through `respond`, which reads the blog's row, answers 304 when the
caller's copy is current and builds the body only when it is not. Each answer is
remembered per URL with the seq it was made at and the hub's channel that followed the
blog then; `CachedReads`, a middleware in front of routing, then answers a repeat of that
URL (GET, or HEAD where the route answers HEAD) from memory while that channel (kept
current by the broker and the periodic check) still follows the blog at that head: a 304
costs no query and no routing, and a kept body (feeds, pages) no rendering. Entry rows
are read only to build a 200.
"""

import asyncio
import email.utils
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__
from app.models import Blog, utc_now
from app.queries import find_blog, head_changed_at
from app.read_cache import Answer, ReadCache
from app.realtime.hub import Channel, Hub

logger = logging.getLogger("bulletin.caching")

# Live blogs: a CDN asks again after a few seconds and may serve its copy meanwhile.
LIVE_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400"
# Ended blogs rarely change (a late correction shows within the hour).
ENDED_CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400, stale-if-error=86400"
PRIVATE_CACHE_CONTROL = "private, no-store"
# OpenAPI `responses` entry for every cached read.
NOT_MODIFIED_RESPONSE: dict[int | str, dict[str, object]] = {
    304: {
        "description": "Not modified: the copy named by If-None-Match or If-Modified-Since "
        "is current."
    }
}
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')
# The reads of one blog: the API's and the pages'.
_BLOG_PATH = re.compile(r"^/(?:api/v1/)?blogs/([a-z0-9]+(?:-[a-z0-9]+)*)(?:/|$)")
ONE_SECOND = timedelta(seconds=1)
# How long after the end of the second of a change its date is sent and believed: more than
# the time from stamping a change to its commit, plus the clock skew between processes.
LAST_MODIFIED_DELAY = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class BlogVersion:
    """What every public read of a blog depends on, at one head seq."""

    seq: int
    live: bool
    changed_at: datetime
    # Tells this blog from an earlier one that had the same slug (a restored database).
    epoch: str

    @classmethod
    def of(cls, blog: Blog, changed_at: datetime) -> "BlogVersion":
        return cls(blog.head_seq, blog.status == "live", changed_at, epoch_of(blog))

    def names(self, blog: Blog) -> bool:
        """Whether this is the version of this very blog (not an earlier namesake) at its head."""
        return self.seq == blog.head_seq and self.epoch == epoch_of(blog)


def epoch_of(blog: Blog) -> str:
    return f"{blog.id}.{blog.created_at.timestamp()}"


@dataclass(frozen=True, slots=True)
class Representation:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str
    # The end of the second of the head change: a copy dated then or later is current.
    modified_by: datetime
    cache_control: str
    vary: str | None

    def dated(self, now: datetime) -> bool:
        """Whether Last-Modified may be sent: no change still unseen can be dated before it."""
        return now >= self.modified_by + LAST_MODIFIED_DELAY

    def headers(self, *, now: datetime, not_modified: bool = False) -> dict[str, str]:
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control}
        if self.vary:
            headers["Vary"] = self.vary
        # A 304 carries the ETag; Last-Modified is representation metadata of the 200.
        if not not_modified and self.dated(now):
            headers["Last-Modified"] = email.utils.format_datetime(self.modified_by, usegmt=True)
        return headers


def validators(version: BlogVersion, variant: str, *, vary: str | None = None) -> Validators:
    """The validators and cache policy of one variant of a blog at `version`."""
    digest = hashlib.sha256(f"{__version__}|{version.epoch}|{variant}".encode()).hexdigest()
    return Validators(
        etag=f'"{digest[:16]}-{version.seq}"',
        modified_by=version.changed_at.astimezone(UTC).replace(microsecond=0) + ONE_SECOND,
        cache_control=LIVE_CACHE_CONTROL if version.live else ENDED_CACHE_CONTROL,
        vary=vary,
    )


def is_current(
    if_none_match: str | None, if_modified_since: str | None, checked: Validators, now: datetime
) -> bool:
    """RFC 9110 section 13.2.2 for GET: If-None-Match decides when sent, else If-Modified-Since."""
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        # Weak comparison, as If-None-Match asks: a proxy that compressed may add W/.
        return checked.etag in _ENTITY_TAG.findall(if_none_match)
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # not an HTTP-date: ignored
    if since.tzinfo is None or since > now - LAST_MODIFIED_DELAY:
        return False  # a date later than any Last-Modified sent yet proves nothing
    return checked.modified_by <= since


def is_not_modified(request: Request, checked: Validators, *, now: datetime) -> bool:
    headers = request.headers
    return is_current(headers.get("if-none-match"), headers.get("if-modified-since"), checked, now)


def not_modified(checked: Validators, *, now: datetime) -> Response:
    return Response(status_code=304, headers=checked.headers(now=now, not_modified=True))


def full(representation: Representation, checked: Validators, *, now: datetime) -> Response:
    return Response(
        representation.body, media_type=representation.media_type, headers=checked.headers(now=now)
    )


def private(representation: Representation) -> Response:
    """A response that depends on the caller's token: never stored by anyone else."""
    return Response(
        representation.body,
        media_type=representation.media_type,
        headers={"Cache-Control": PRIVATE_CACHE_CONTROL},
    )


def request_url(scope: Scope) -> str:
    """The path and query as sent: what a CDN keys on, and what this process remembers."""
    query = scope.get("query_string", b"")
    return f"{scope['path']}?{query.decode('latin-1')}" if query else scope["path"]


class CachedReads:
    """Answers a repeated public read of a blog from memory, before routing.

    A GET (or a HEAD, where the route answers HEAD) without a token whose URL this
    process answered at the blog's current head gets a 304 (when the caller's copy is
    current) or the kept body (headers only for HEAD), exactly as the route answered it;
    anything else goes on to the routes. Installed inside the rate limits.
    """

    def __init__(self, app: ASGIApp, cache: ReadCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _BLOG_PATH.match(scope["path"])
            if match is not None and await self._answer(scope, match.group(1), send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, slug: str, send: Send) -> bool:
        answer = self.cache.answer(slug, request_url(scope))
        if answer is None or answer.channel is None:
            return False
        head = scope["method"] == "HEAD"
        if head and not answer.answers_head:
            return False  # the route refuses HEAD: let it say so
        if_none_match = if_modified_since = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
            elif name == b"authorization":
                return False  # the route decides what a token may see
        # A commit in this process hands its seq to the hub with call_soon: let that land first.
        await asyncio.sleep(0)
        channel = scope["app"].state.hub.channels.get(slug)
        if channel is not answer.channel or channel.last_seq != answer.seq:
            return False
        now = utc_now()
        if is_current(if_none_match, if_modified_since, answer.validators, now):
            status, headers, body = 304, answer.encoded("304", now), b""
        elif answer.representation is not None:
            status, headers = 200, answer.encoded("200", now)
            body = b"" if head else answer.representation.body
        else:
            return False
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True


def _answers_head(request: Request) -> bool:
    """Whether a HEAD of this request's URL reaches a route."""
    if request.method == "HEAD":
        return True
    scope = {**request.scope, "method": "HEAD"}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


Build = Callable[[AsyncSession, Blog], Awaitable[Representation]]


async def respond(
    request: Request,
    slug: str,
    build: Build,
    *,
    variant: str | None = None,
    keep_body: bool = False,
    vary: str | None = None,
    private_to_caller: bool = False,
) -> Response:
    """Answer a public read of one blog with validators and cache headers: one call per route.

    `build(session, blog)` makes the 200's body; it runs only when the caller's copy is
    not current, and may raise any BulletinError. `variant` names what besides the blog's
    state the body depends on; it defaults to the request's path and query. The reader
    page, for example:

        return await caching.respond(request, slug, build_page, keep_body=True)

    `keep_body` keeps the built body in memory until the blog next changes (for costly,
    popular bodies: feeds, pages); `CachedReads` then serves repeats without the route.
    `private_to_caller` is for answers that depend on the caller's token: built fresh,
    `Cache-Control: private, no-store`, never remembered.
    """
    state = request.app.state
    if private_to_caller:
        async with state.database.read_session() as session:
            return private(await build(session, await find_blog(session, slug)))

    cache: ReadCache = state.read_cache
    url = request_url(request.scope)
    now = utc_now()
    async with state.database.read_session() as session:
        blog = await find_blog(session, slug)
        version = cache.version(blog) or BlogVersion.of(blog, await head_changed_at(session, blog))
        checked = validators(version, variant or url, vary=vary)
        built = None if is_not_modified(request, checked, now=now) else await build(session, blog)
    cache.remember_version(slug, version)
    channel = state.hub.channels.get(slug)
    if channel is None and version.live:
        channel = await _follow(state.hub, slug)
    if channel is not None and channel.blog_id != blog.id:
        channel = None  # the hub still follows an earlier blog of this slug
    kept = cache.answer(slug, url)
    if built is None and kept is not None and kept.seq == version.seq:
        body = kept.representation  # a 304 keeps the body already kept
    else:
        body = built if keep_body else None
    answers_head = kept.answers_head if kept is not None else _answers_head(request)
    cache.remember_answer(
        slug, url, Answer(version.seq, checked, body, channel, answers_head=answers_head)
    )
    if built is None:
        return not_modified(checked, now=now)
    return full(built, checked, now=now)


async def _follow(hub: Hub, slug: str) -> Channel | None:
    """Have the hub follow a live blog, so repeat reads are answered from memory."""
    try:
        return await hub.channel(slug)
    except Exception:
        # Only the speed of later requests depends on it: they go to the routes instead.
        logger.warning("could not follow %s for cached reads", slug, exc_info=True)
        return None
