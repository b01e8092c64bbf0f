"""`CachedReads`: repeat public reads of a blog answered from memory, before routing."""

from starlette.types import ASGIApp, Receive, Scope, Send

from app.caching.validators import is_current, request_url
from app.models import utc_now
from app.paths import BLOG_READ
from app.services import services_of


class CachedReads:
    """Answers a repeated public read of a blog from memory, before routing.

    A GET (or a HEAD, where the route answers HEAD) without a token whose URL this
    process answered at the blog's current head gets a 304 (when the caller's copy is
    current) or the kept body (headers only for HEAD), exactly as the route answered it;
    anything else goes on to the routes. Installed inside the rate limits.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = BLOG_READ.match(scope["path"])
            if match is not None and await self._answer(scope, match.group(1), send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, slug: str, send: Send) -> bool:
        services = services_of(scope)
        answer = services.read_cache.answer(slug, request_url(scope))
        # While an operator has stopped the blog's streams, what is kept is served as it is,
        # even stale: the blog costs the database nothing per request (app/stopping.py).
        stopped = services.hub.streams_stopped(slug)
        if answer is None or (answer.position is None and not stopped):
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
        # A commit in this process moves the hub's position before its request returns.
        if not stopped and services.hub.position(slug) != answer.position:
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
