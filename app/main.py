"""`create_app(settings)`: builds the application and owns its resources through the lifespan."""

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__, docs, pages, sitemaps
from app.api import audit as audit_api
from app.api import (
    blogs,
    console,
    editing,
    entries,
    events,
    feeds,
    health,
    me,
    media,
    members,
    newsroom,
    readers,
    revisions,
    sessions,
    tokens,
    users,
)
from app.api import webhooks as webhooks_api
from app.api.errors import install_error_handlers
from app.caching.middleware import CachedReads
from app.config import Settings
from app.embeds.providers import Providers
from app.limits.bodies import RequestGuards
from app.limits.middleware import RateLimitGuard, StreamCapGuard
from app.logs import RequestIds
from app.paths import MEDIA_UPLOAD
from app.realtime import multiplex, streams
from app.rendering import WEB_DIR
from app.services import Services, open_services

logger = logging.getLogger("bulletin")

DESCRIPTION = """
Live blogs for newsrooms. Newsroom tools write entries with a bearer token;
every change is appended to the blog's change log with a gap-free `seq`, which
readers and third parties follow. Errors are always
`{"error": {"code", "message", "fields"?}}`.
"""


# Pages run only Bulletin's own scripts and styles (the JSON-LD block is data, not script);
# entries show photos and videos from wherever the newsroom links them. Frames: this server
# and the allow-listed embed providers' players (app/embeds/providers.py), which bulletin.js
# inserts only after a reader's click.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; "
    "media-src 'self' https: http:; connect-src 'self'; frame-src {frames}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def page_policy(frame_origins: Sequence[str]) -> str:
    return PAGE_POLICY.format(frames=" ".join(["'self'", *frame_origins]))


# The newsroom holds a token: never framed by another page, and it talks only to this server.
NEWSROOM_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The API's docs (app/docs.py) load only this server's copies of Swagger UI and ReDoc, but
# they are not Bulletin's pages, so they get exceptions of their own, on their path alone.
# FastAPI's Swagger UI page starts Swagger UI with one inline script: that script is allowed
# by its hash (no other inline script runs). ReDoc writes its styles into the page as it
# renders (and FastAPI's ReDoc page has an inline style), and searches in a worker it makes
# from a blob. Both show inline SVG and data: images.
SWAGGER_UI_POLICY = (
    f"default-src 'none'; script-src 'self' {docs.SWAGGER_UI_SCRIPTS}; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
REDOC_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# Anything else (JSON, feeds, streams) is data: if a browser ever renders it, nothing runs.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"

Headers = list[tuple[bytes, bytes]]


def _csp(policy: str) -> Headers:
    return [(b"content-security-policy", policy.encode())]


EVERY_ANSWER: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]
DATA_HEADERS = _csp(DATA_POLICY)
DOCS_HEADERS = {
    docs.SWAGGER_UI_PATH: _csp(SWAGGER_UI_POLICY),
    docs.REDOC_PATH: _csp(REDOC_POLICY),
}
# X-Frame-Options for browsers older than frame-ancestors.
NEWSROOM_HEADERS = [*_csp(NEWSROOM_POLICY), (b"x-frame-options", b"DENY")]


def policy_headers(path: str, content_type: bytes, page_headers: Headers) -> Headers:
    """The Content-Security-Policy (and framing rule) of one answer, by what it is."""
    if path.startswith("/static/"):
        return []  # a policy on a script or a style sheet does nothing: the page's applies
    if path in ("/newsroom", "/console"):
        return NEWSROOM_HEADERS
    if path in DOCS_HEADERS:
        return DOCS_HEADERS[path]
    return page_headers if content_type.startswith(b"text/html") else DATA_HEADERS


class BrowserHardening:
    """Headers that tell browsers how to treat each answer (security review L3): `nosniff`
    and a Referrer-Policy on every one, a Content-Security-Policy by kind (`policy_headers`).
    Outermost, so that answers from the rate limits and the read cache carry them too;
    headers a route set itself are kept."""

    def __init__(self, app: ASGIApp, frame_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.page_headers = _csp(page_policy(frame_origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = EVERY_ANSWER
                # A 304's headers update the stored copy's: that copy keeps the policy it came
                # with (and a 304 has no content type to choose one by).
                if message["status"] != 304:
                    content_type = next((v for n, v in headers if n == b"content-type"), b"")
                    extra = extra + policy_headers(path, content_type, self.page_headers)
                present = {name.lower() for name, _value in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_hardened)


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the app, its services) out of every later collection.

    A full collection otherwise walks every object the imports made, about 70 ms in a serving
    process, and stalls every request and every reader's delivery while it runs (the Python
    docs' advice for long-running servers, `gc.freeze`)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, *, serving: bool = False) -> FastAPI:
    """The application; `serving` for a server process (not a test's app in a test process)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Services]]:
        async with open_services(settings) as services:
            app.state.services = services
            if serving:
                freeze_startup_heap()
            # Lifespan state reaches uvicorn's protocols as `app_state`: the edge finds the hub.
            yield {"services": services}

    app = FastAPI(
        title="Bulletin",
        version=__version__,
        summary="Live blogs for newsrooms: entries, a numbered change log, live streams.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # A redirect to the URL without its trailing slash would be built from the request's
        # Host header: a cache in front could keep it for everyone. Such URLs get 404 instead.
        redirect_slashes=False,
        # The docs are served whole from here (app/docs.py), not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.state.readiness = health.Readiness()
    # Innermost: repeat reads are answered from memory after the limits and CORS have run.
    app.add_middleware(CachedReads)
    # Uploads stream in under a limit of their own (BULLETIN_MEDIA_MAX_BYTES, app/media/).
    app.add_middleware(
        RequestGuards, max_body_bytes=settings.max_body_bytes, own_limits=MEDIA_UPLOAD
    )
    if settings.rate_limit_enabled:
        # Outside the request guards: an address over its limit costs no body checks or routing.
        app.add_middleware(RateLimitGuard)
    # Outside the rate limits: a process full of streams refuses the next at no cost.
    app.add_middleware(StreamCapGuard)
    # Other sites embed blogs and read feeds; reads carry no credentials, so any origin
    # allowed here can only read what is public anyway.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD"],
        allow_headers=["Last-Event-ID", "If-None-Match", "If-Modified-Since"],
        expose_headers=["ETag", "Last-Modified", "Retry-After"],
        max_age=3600,
    )
    app.add_middleware(
        BrowserHardening,
        frame_origins=Providers(
            settings.embed_oembed_endpoints, settings.embed_mastodon_instances
        ).frame_origins(),
    )
    # Outermost: every answer, refusals included, carries the request's id (app/logs.py).
    app.add_middleware(RequestIds)
    for module in (
        health,
        blogs,
        readers,
        entries,
        revisions,
        media,
        events,
        feeds,
        tokens,
        streams,
        multiplex,
    ):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(sitemaps.router)
    app.include_router(webhooks_api.router)
    app.include_router(media.files)
    for people in (users, members, me, audit_api, sessions, newsroom, editing, console):
        app.include_router(people.router)
    docs.install_docs(app)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    return app


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory`: settings come from `BULLETIN_*` variables."""
    return create_app(Settings(), serving=True)
