"""`Services`: everything a running Bulletin holds, built and closed in one place.

`open_services(settings)` builds them in dependency order and closes them in reverse.
The app's lifespan keeps the result as `app.state.services` (routes reach it through
app/api/deps.py, middleware through `services_of(scope)`), and hands it to uvicorn's
protocols as lifespan state (`app_state["services"]`), which is how the stream edge
finds the hub without a global.

What happens after a commit is wired here, once: the publisher tells its listeners
(the hub, then this process's webhook worker) about every committed event, and the
newsroom's private channel (never the others) about every private change, and this
process's scheduler about every publish held or scheduled here.
"""

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from app.caching.memory import ReadCache
from app.config import Settings
from app.db import Database
from app.embeds.resolver import EmbedResolver
from app.feeds import FeedWriter
from app.installation import load_identity
from app.limits import RateLimits
from app.media.library import MediaLibrary
from app.media.storage import create_store
from app.metrics import Metrics
from app.people.sessions import SessionStore
from app.people.sign_in_limits import SignInLimits
from app.presence import Presence
from app.publishing import Publisher
from app.realtime.audience import Audience
from app.realtime.broker import create_broker
from app.realtime.hub import Hub
from app.realtime.newsroom import NewsroomHub
from app.rendering import Renderer
from app.scheduling import Scheduler
from app.tokens import TokenStore
from app.webhooks.registry import WebhookRegistry
from app.webhooks.signing import SecretBox
from app.webhooks.worker import WebhookWorker


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    database: Database
    tokens: TokenStore
    renderer: Renderer
    metrics: Metrics
    hub: Hub
    publisher: Publisher
    read_cache: ReadCache
    feed_writer: FeedWriter
    webhooks: WebhookRegistry
    media: MediaLibrary
    # None when turned off: rate limits by settings, webhook delivery without a secret key.
    rate_limits: RateLimits | None
    webhook_worker: WebhookWorker | None
    # Sign-in sessions of the newsroom page, and its private stream.
    sessions: SessionStore
    newsroom: NewsroomHub
    # Who is editing which entry, told on the newsroom stream.
    presence: Presence
    # Publishes held and scheduled entries when they fall due.
    scheduler: Scheduler
    # Readers now and delivery receipts, over every process.
    audience: Audience


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Build, start and finally stop every service of one app."""
    database = Database(settings.database_url)
    tokens = TokenStore(database)
    renderer = Renderer(settings.public_base_url)
    metrics = Metrics()
    # Without BULLETIN_SECRET_KEY no signing secret can be stored: webhooks stay off.
    secret_box = SecretBox(settings.secret_key.get_secret_value()) if settings.secret_key else None
    rate_limits = (
        RateLimits(settings, refused=metrics.count_refusal) if settings.rate_limit_enabled else None
    )
    read_cache = ReadCache()
    metrics.writers_waiting.set_function(lambda: database.writers_waiting)
    metrics.db_pool_checked_out.set_function(database.pool_checked_out)
    metrics.db_pool_size.set_function(database.pool_size)
    try:
        identity = await load_identity(database)
    except BaseException:
        await database.dispose()
        raise
    hub = Hub(
        database,
        create_broker(settings.broker_url, identity, refused=metrics.broker_refused.inc),
        metrics,
        check_interval=settings.hub_check_seconds,
        heartbeat_interval=settings.heartbeat_seconds,
        forget_answers=read_cache.forget,
    )
    newsroom = NewsroomHub(
        database,
        create_broker(
            settings.broker_url, identity, refused=metrics.broker_refused.inc, topic="newsroom"
        ),
        renderer,
    )
    audience = Audience(
        hub,
        create_broker(
            settings.broker_url, identity, refused=metrics.broker_refused.inc, topic="readers"
        ),
        period=settings.readers_report_seconds,
    )
    sign_in_limits = SignInLimits(settings)
    webhook_worker = (
        WebhookWorker(database, settings, secret_box, metrics=metrics) if secret_box else None
    )
    media = MediaLibrary(database, settings, create_store(settings))
    embeds = EmbedResolver(settings, media)
    listeners = [hub.announce] + ([webhook_worker.committed] if webhook_worker else [])
    publisher = Publisher(
        database,
        renderer,
        listeners=listeners,
        note_listeners=[newsroom.announce],
        embeds=embeds,
    )
    services = Services(
        settings=settings,
        database=database,
        tokens=tokens,
        renderer=renderer,
        metrics=metrics,
        hub=hub,
        publisher=publisher,
        read_cache=read_cache,
        feed_writer=FeedWriter(),
        webhooks=WebhookRegistry(database, settings, secret_box),
        media=media,
        rate_limits=rate_limits,
        webhook_worker=webhook_worker,
        sessions=SessionStore(database, settings, sign_in_limits),
        newsroom=newsroom,
        presence=Presence(
            database,
            newsroom,
            ttl_seconds=settings.editing_seconds,
            sweep_seconds=settings.hub_check_seconds,
        ),
        scheduler=Scheduler(
            database,
            publisher,
            sweep_seconds=settings.schedule_sweep_seconds,
            lease_seconds=settings.schedule_lease_seconds,
        ),
        audience=audience,
    )
    try:
        if rate_limits is not None:
            await rate_limits.start(tokens)
        await sign_in_limits.start()
        await embeds.start()
        if settings.admin_token is not None:
            await tokens.adopt_environment_token(
                settings.admin_token.get_secret_value(), identity.id
            )
        await hub.start()
        await newsroom.start()
        await services.presence.start()
        await audience.start()
        if webhook_worker is not None:
            await webhook_worker.start()
        await services.scheduler.start()
        yield services
    finally:
        await services.scheduler.stop()
        if webhook_worker is not None:
            await webhook_worker.stop()
        await services.presence.stop()
        await audience.stop()
        await newsroom.stop()
        await services.media.close()
        await hub.stop()
        await sign_in_limits.stop()
        if rate_limits is not None:
            await rate_limits.stop()
        await database.dispose()


def services_of(scope: MutableMapping[str, Any]) -> Services:
    """The services of the app serving this ASGI scope (for middleware, before routing)."""
    services: Services = scope["app"].state.services
    return services
