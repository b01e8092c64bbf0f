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
from app.caching.memory import ReadCache
from app.caching.middleware import CachedReads
from app.config import Settings
from app.db import Database
from app.errors import install_error_handlers
from app.feeds import FeedWriter
from app.limits import RateLimits
from app.limits.bodies import RequestGuards
from app.limits.middleware import RateLimitGuard
from app.metrics import Metrics
from app.publishing import Publisher
from app.realtime import streams
from app.realtime.broker import create_broker
from app.realtime.hub import Hub
from app.rendering import WEB_DIR, Renderer
from app.tokens import TokenStore
from app.webhooks.registry import WebhookRegistry
from app.webhooks.signing import SecretBox
from app.webhooks.worker import WebhookWorker, waking

logger = logging.getLogger("bulletin")

DESCRIPTION = """
Live blogs for newsrooms. Newsroom tools write entries with a bearer token;
every change is appended to the blog's change log with a gap-free `seq`, which
readers and third parties follow. Errors are always
`{"error": {"code", "message", "fields"?}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    renderer = Renderer()
    metrics = Metrics()
    # Without BULLETIN_SECRET_KEY no signing secret can be stored: webhooks stay off.
    secret_box = SecretBox(settings.secret_key.get_secret_value()) if settings.secret_key else None
    rate_limits = RateLimits(settings) if settings.rate_limit_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
        database = Database(settings.database_url)
        token_store = TokenStore(database)
        app.state.database = database
        app.state.token_store = token_store
        if rate_limits is not None:
            await rate_limits.start(token_store)
        hub = Hub(
            database,
            create_broker(settings.broker_url),
            metrics,
            check_interval=settings.hub_check_seconds,
            heartbeat_interval=settings.heartbeat_seconds,
        )
        app.state.hub = hub
        webhook_worker = WebhookWorker(database, settings, secret_box) if secret_box else None
        app.state.webhook_registry = WebhookRegistry(database, settings, secret_box)
        app.state.publisher = Publisher(
            database, renderer, announce=waking(webhook_worker, hub.announce)
        )
        try:
            if settings.admin_token is not None:
                await token_store.adopt_environment_token(settings.admin_token.get_secret_value())
            await hub.start()
            if webhook_worker is not None:
                await webhook_worker.start()
            # Lifespan state reaches uvicorn's protocols as `app_state`: the edge finds the hub.
            yield {"hub": hub, "settings": settings, "rate_limits": rate_limits}
        finally:
            if webhook_worker is not None:
                await webhook_worker.stop()
            await hub.stop()
            if rate_limits is not None:
                await rate_limits.stop()
            await database.dispose()

    app = FastAPI(
        title="Bulletin",
        version=__version__,
        summary="Live blogs for newsrooms: entries, a numbered change log, live streams.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.renderer = renderer
    app.state.metrics = metrics
    app.state.read_cache = ReadCache()
    app.state.feed_writer = FeedWriter()
    app.state.rate_limits = rate_limits
    install_error_handlers(app)
    # Innermost: repeat reads are answered from memory after the limits and CORS have run.
    app.add_middleware(CachedReads, cache=app.state.read_cache)
    app.add_middleware(RequestGuards, max_body_bytes=settings.max_body_bytes)
    if rate_limits is not None:
        # Outside the request guards: an address over its limit costs no body checks or routing.
        app.add_middleware(RateLimitGuard, rate_limits=rate_limits)
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
