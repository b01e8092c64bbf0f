"""HTTP caching of public reads: validators from the blog's head seq, 304s from memory.

Everything a public read of a blog shows is a function of its change log up to the
head `seq`, so the head names the state. The ETag is the head plus the request's
variant (path, parameters, representation); Last-Modified is the end of the second in
which the head change was logged, sent only once that second is over, so one date
never stands for two states. Both are the same for every client: pollers and CDNs
share one cached answer.

A conditional request is checked against the head this process already knows: the
hub's channel for the blog, kept current by the broker and the periodic check. When
it matches, the answer is a 304 without a query. Only blogs without a channel (ended
ones, which CDNs may cache for an hour) cost a read of the blog's own row; entry rows
are read only to build a 200.
"""

import asyncio
import email.utils
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.models import Blog, utc_now
from app.queries import find_blog, head_changed_at
from app.realtime.hub import Hub

logger = logging.getLogger("bulletin.caching")

# Live blogs: a CDN asks again after a few seconds and may serve its copy meanwhile.
LIVE_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400"
# Ended blogs rarely change (a late correction shows within the hour).
ENDED_CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400, stale-if-error=86400"
PRIVATE_CACHE_CONTROL = "private, no-store"
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')
ONE_SECOND = timedelta(seconds=1)
# OpenAPI `responses` entry for every cached read.
NOT_MODIFIED_RESPONSE: dict[int | str, dict[str, object]] = {
    304: {
        "description": "Not modified: the copy named by If-None-Match or If-Modified-Since "
        "is current."
    }
}


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
        epoch = f"{blog.id}.{blog.created_at.timestamp()}"
        return cls(blog.head_seq, blog.status == "live", changed_at, epoch)


@dataclass(frozen=True, slots=True)
class Representation:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str
    # The end of the second of the head change: a copy dated then or later is current.
    modified_by: datetime
    send_last_modified: bool
    cache_control: str
    vary: str | None

    def headers(self, *, not_modified: bool = False) -> dict[str, str]:
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control}
        if self.vary:
            headers["Vary"] = self.vary
        # A 304 carries the ETag; Last-Modified is representation metadata of the 200.
        if self.send_last_modified and not not_modified:
            headers["Last-Modified"] = email.utils.format_datetime(self.modified_by, usegmt=True)
        return headers


def validators(
    version: BlogVersion, variant: str, *, now: datetime, vary: str | None = None
) -> Validators:
    """The validators and cache policy of one variant of a blog at `version`."""
    digest = hashlib.sha256(f"{__version__}|{version.epoch}|{variant}".encode()).hexdigest()
    modified_by = version.changed_at.astimezone(UTC).replace(microsecond=0) + ONE_SECOND
    return Validators(
        etag=f'"{digest[:16]}-{version.seq}"',
        modified_by=modified_by,
        send_last_modified=now >= modified_by,
        cache_control=LIVE_CACHE_CONTROL if version.live else ENDED_CACHE_CONTROL,
        vary=vary,
    )


def is_not_modified(request: Request, checked: Validators, *, now: datetime) -> bool:
    """RFC 9110 section 13.2.2 for GET: If-None-Match decides when sent, else If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        # Weak comparison, as If-None-Match asks: a proxy that compressed may add W/.
        return checked.etag in _ENTITY_TAG.findall(if_none_match)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # not an HTTP-date: ignored
    if since.tzinfo is None or since > now:
        return False  # a date from a clock ahead of ours proves nothing
    return checked.modified_by <= since


def not_modified(checked: Validators) -> Response:
    return Response(status_code=304, headers=checked.headers(not_modified=True))


def full(representation: Representation, checked: Validators) -> Response:
    return Response(
        representation.body, media_type=representation.media_type, headers=checked.headers()
    )


def private(representation: Representation) -> Response:
    """A response that depends on the caller's token: never stored by anyone else."""
    return Response(
        representation.body,
        media_type=representation.media_type,
        headers={"Cache-Control": PRIVATE_CACHE_CONTROL},
    )


class ReadCache:
    """This process's memory of blog versions and of built bodies, both bounded (LRU)."""

    def __init__(self, max_blogs: int = 10_000, max_bodies: int = 128) -> None:
        self.max_blogs = max_blogs
        self.max_bodies = max_bodies
        self._versions: OrderedDict[str, BlogVersion] = OrderedDict()
        self._bodies: OrderedDict[tuple[str, str], tuple[int, Representation]] = OrderedDict()

    def version(self, slug: str, seq: int) -> BlogVersion | None:
        """The blog's version at `seq`, if this process has seen it."""
        version = self._versions.get(slug)
        return version if version is not None and version.seq == seq else None

    def remember(self, slug: str, version: BlogVersion) -> None:
        self._versions[slug] = version
        self._versions.move_to_end(slug)
        while len(self._versions) > self.max_blogs:
            self._versions.popitem(last=False)

    def body(self, slug: str, variant: str, seq: int) -> Representation | None:
        kept = self._bodies.get((slug, variant))
        if kept is None or kept[0] != seq:
            return None
        self._bodies.move_to_end((slug, variant))
        return kept[1]

    def keep(self, slug: str, variant: str, seq: int, representation: Representation) -> None:
        self._bodies[(slug, variant)] = (seq, representation)
        self._bodies.move_to_end((slug, variant))
        while len(self._bodies) > self.max_bodies:
            self._bodies.popitem(last=False)


Build = Callable[[AsyncSession, Blog], Awaitable[Representation]]


async def respond(
    request: Request,
    slug: str,
    build: Build,
    *,
    variant: str,
    keep_body: bool = False,
    vary: str | None = None,
    private_to_caller: bool = False,
) -> Response:
    """Answer a public read of one blog with validators and cache headers: one call per route.

    `build(session, blog)` makes the 200's body; it runs only when the caller's copy is
    not current, and may raise any BulletinError. `variant` names everything besides
    the blog's state that the body depends on (its kind and parameters), for example
    the reader page:

        return await caching.respond(
            request, slug, build_page, variant=f"page?before={before}", keep_body=True
        )

    `keep_body` keeps the built body in memory until the next change (for costly,
    popular bodies such as feeds and pages); `private_to_caller` is for answers that
    depend on the caller's token: built fresh, `Cache-Control: private, no-store`.
    """
    state = request.app.state
    if private_to_caller:
        async with state.database.read_session() as session:
            return private(await build(session, await find_blog(session, slug)))

    cache: ReadCache = state.read_cache
    hub: Hub = state.hub
    # A commit in this process hands its seq to the hub with call_soon: let that land first.
    await asyncio.sleep(0)
    channel = hub.channels.get(slug)
    now = utc_now()
    if channel is not None:
        version = cache.version(slug, channel.last_seq)
        if version is not None:
            checked = validators(version, variant, now=now, vary=vary)
            if is_not_modified(request, checked, now=now):
                return not_modified(checked)
            kept = cache.body(slug, variant, version.seq) if keep_body else None
            if kept is not None:
                return full(kept, checked)

    async with state.database.read_session() as session:
        blog = await find_blog(session, slug)
        version = cache.version(slug, blog.head_seq) or BlogVersion.of(
            blog, await head_changed_at(session, blog)
        )
        checked = validators(version, variant, now=now, vary=vary)
        representation = None
        if not is_not_modified(request, checked, now=now):
            representation = await build(session, blog)
    cache.remember(slug, version)
    if channel is None and version.live:
        await _follow(hub, slug)
    if representation is None:
        return not_modified(checked)
    if keep_body:
        cache.keep(slug, variant, version.seq, representation)
    return full(representation, checked)


async def _follow(hub: Hub, slug: str) -> None:
    """Have the hub follow a live blog, so its next conditional reads need no query."""
    try:
        await hub.channel(slug)
    except Exception:
        # Only the next request's speed depends on it: that request reads the blog row.
        logger.warning("could not follow %s for cached reads", slug, exc_info=True)
