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
caller's copy is current and builds the body only when it is not (or when the caller asks
with `If-None-Match: *`, which is current only if there is a body to build). Each answer is
remembered per URL with the seq it was made at and the hub's channel that followed the
blog then; `CachedReads`, a middleware in front of routing, then answers a repeat of that
URL (GET, or HEAD where the route answers HEAD) from memory while that channel (kept
current by the broker and the periodic check) still follows the blog at that head: a 304
costs no query and no routing, and a kept body (feeds, pages) no rendering. Entry rows
are read only to build a 200.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Match

from app.caching.memory import Answer
from app.caching.validators import (
    LAST_MODIFIED_DELAY,
    PRIVATE_CACHE_CONTROL,
    BlogVersion,
    Representation,
    Validators,
    is_current,
    request_url,
    validators,
)
from app.models import Blog, utc_now
from app.queries import find_blog, head_changed_at
from app.realtime.hub import Hub, Position

if TYPE_CHECKING:
    from app.services import Services

logger = logging.getLogger("bulletin.caching")

# OpenAPI `responses` entry for every cached read.
NOT_MODIFIED_RESPONSE: dict[int | str, dict[str, object]] = {
    304: {
        "description": "Not modified: the copy named by If-None-Match or If-Modified-Since "
        "is current."
    }
}


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


def known_url(request: Request) -> str:
    """The request's path and the query parameters its route takes, in the order sent.

    What the memory of answers is keyed on, and an ETag's default variant: parameters the
    route ignores cannot make one URL into thousands of kept answers (`feed.atom?x=1`,
    `?x=2`, ...), and they all share the one answer (and ETag) of the plain URL.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return request_url(request.scope)
    known = _route_query_names(route, dependant)
    kept = [(name, value) for name, value in request.query_params.multi_items() if name in known]
    path = request.scope["path"]
    return f"{path}?{urlencode(kept)}" if kept else path


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route reads, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def _route_query_names(route: Any, dependant: Any) -> frozenset[str]:
    """_query_names, worked out once per route and kept on it (it lives as long as its app)."""
    known: frozenset[str] | None = getattr(route, QUERY_NAMES_ATTRIBUTE, None)
    if known is None:
        known = frozenset(_query_names(dependant))
        setattr(route, QUERY_NAMES_ATTRIBUTE, known)
    return known


QUERY_NAMES_ATTRIBUTE = "_bulletin_query_names"


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
    services: Services = request.app.state.services
    if private_to_caller:
        async with services.database.read_session() as session:
            return private(await build(session, await find_blog(session, slug)))

    cache = services.read_cache
    url = known_url(request)
    now = utc_now()
    async with services.database.read_session() as session:
        blog = await find_blog(session, slug)
        version = cache.version(blog) or BlogVersion.of(blog, await head_changed_at(session, blog))
        checked = validators(version, variant or url, vary=vary)
        kept = cache.answer(slug, url)
        current = is_not_modified(request, checked, now=now)
        if current and not _asks_for_any(request):
            built = None
        elif (
            kept is not None
            and kept.representation is not None
            and kept.validators.etag == checked.etag  # this blog, this variant, this seq
        ):
            built = kept.representation  # kept since the blog last changed: not built again
        else:
            # `If-None-Match: *` names any representation, so there must be one: building it
            # proves that (or raises: a missing or draft entry is 404, not 304).
            built = await build(session, blog)
    cache.remember_version(slug, version)
    following = services.hub.position(slug)
    if following is None and version.live:
        following = await _follow(services.hub, slug)
    position = None
    if following is not None and following.blog_id == blog.id:
        # Current while the hub stands at this version's seq, in this following of the blog
        # (not while it still follows an earlier blog of this slug).
        position = replace(following, seq=version.seq)
    if built is None and kept is not None and kept.validators.etag == checked.etag:
        body = kept.representation  # a 304 keeps the body already kept
    else:
        body = built if keep_body else None
    answers_head = kept.answers_head if kept is not None else _answers_head(request)
    cache.remember_answer(
        slug, url, Answer(version.seq, checked, body, position, answers_head=answers_head)
    )
    if current or built is None:
        return not_modified(checked, now=now)
    return full(built, checked, now=now)


def _asks_for_any(request: Request) -> bool:
    if_none_match = request.headers.get("if-none-match")
    return if_none_match is not None and if_none_match.strip() == "*"


async def _follow(hub: Hub, slug: str) -> Position | None:
    """Have the hub follow a live blog, so repeat reads are answered from memory."""
    try:
        return await hub.follow(slug)
    except Exception:
        # Only the speed of later requests depends on it: they go to the routes instead.
        logger.warning("could not follow %s for cached reads", slug, exc_info=True)
        return None


__all__ = [
    "LAST_MODIFIED_DELAY",
    "NOT_MODIFIED_RESPONSE",
    "BlogVersion",
    "Representation",
    "full",
    "is_not_modified",
    "not_modified",
    "request_url",
    "respond",
    "validators",
]
