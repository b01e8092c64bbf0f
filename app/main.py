"""`create_app(settings)`: builds the application and owns its resources through the lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app import __version__, pages
from app.api import blogs, entries, events, feeds, health, tokens
from app.api import webhooks as webhooks_api
from app.api.errors import install_error_handlers
from app.caching.middleware import CachedReads
from app.config import Settings
from app.limits.bodies import RequestGuards
from app.limits.middleware import RateLimitGuard
from app.realtime import streams
from app.rendering import WEB_DIR
from app.services import Services, open_services

logger = logging.getLogger("bulletin")

DESCRIPTION = """
Live blogs for newsrooms. Newsroom tools write entries with a bearer token;
every change is appended to the blog's change log with a gap-free `seq`, which
readers and third parties follow. Errors are always
`{"error": {"code", "message", "fields"?}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Services]]:
        async with open_services(settings) as services:
            app.state.services = services
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
    )
    install_error_handlers(app)
    # Innermost: repeat reads are answered from memory after the limits and CORS have run.
    app.add_middleware(CachedReads)
    app.add_middleware(RequestGuards, max_body_bytes=settings.max_body_bytes)
    if settings.rate_limit_enabled:
        # Outside the request guards: an address over its limit costs no body checks or routing.
        app.add_middleware(RateLimitGuard)
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
    for module in (health, blogs, entries, events, feeds, tokens, streams):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(webhooks_api.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    return app


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory`: settings come from `BULLETIN_*` variables."""
    return create_app(Settings())
