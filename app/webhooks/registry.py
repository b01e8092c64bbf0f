"""Registering webhooks: create, list, change and delete them, and read their delivery state.

A new webhook starts at the blog's head: it receives the events published after it
was registered (a partner catches up on earlier ones with `/events?since=`). Each change
is audited (app/audit.py) in its transaction, naming the fields changed, never the secret.
"""

import asyncio

from pydantic import MISSING
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.db import Database
from app.errors import BulletinError, InvalidInput
from app.models import Blog, Webhook, WebhookDelivery, utc_now
from app.people.roles import SYSTEM, Principal
from app.queries import find_blog, find_in_blog
from app.schemas import (
    WebhookCreate,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
)
from app.webhooks.signing import SecretBox, message_id
from app.webhooks.targets import TargetRefused, resolve_target

PAUSED_REASON = "paused by an admin"


class SecretKeyMissing(BulletinError):
    """The server has no BULLETIN_SECRET_KEY, so it cannot store a signing secret safely."""

    status = 503
    code = "secret_key_not_configured"


class WebhookTargetRefused(InvalidInput):
    code = "webhook_target_refused"


def to_webhook_public(webhook: Webhook, blog: Blog) -> WebhookPublic:
    pending = max(0, blog.head_seq - webhook.delivered_seq)
    return WebhookPublic(
        id=webhook.id,
        blog=blog.slug,
        url=webhook.url,
        description=webhook.description,
        active=webhook.active,
        disabled_reason=webhook.disabled_reason,
        disabled_at=webhook.disabled_at,
        delivered_seq=webhook.delivered_seq,
        head_seq=blog.head_seq,
        pending=pending,
        consecutive_failures=webhook.consecutive_failures,
        last_status_code=webhook.last_status_code,
        last_error=webhook.last_error,
        last_attempt_at=webhook.last_attempt_at,
        last_success_at=webhook.last_success_at,
        next_attempt_at=webhook.next_attempt_at if webhook.active and pending else None,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def to_delivery_public(delivery: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        id=delivery.id,
        seq=delivery.seq,
        message_id=message_id(delivery.webhook_id, delivery.seq),
        attempt=delivery.attempt,
        delivered=delivery.delivered,
        status_code=delivery.status_code,
        error=delivery.error,
        duration_ms=delivery.duration_ms,
        attempted_at=delivery.attempted_at,
    )


class WebhookRegistry:
    """The admin side of webhooks; delivery itself is `app.webhooks.WebhookWorker`'s job."""

    def __init__(self, database: Database, settings: Settings, box: SecretBox | None) -> None:
        self.database = database
        self.settings = settings
        self.box = box

    async def create(
        self, slug: str, data: WebhookCreate, actor: Principal = SYSTEM
    ) -> WebhookPublic:
        box = self._box()
        await self._check_target(data.url)
        now = utc_now()
        async with self.database.write_session() as session:
            blog = await find_blog(session, slug)
            webhook = Webhook(
                blog_id=blog.id,
                url=data.url,
                description=data.description,
                secret_ciphertext=box.seal(data.secret.get_secret_value()),
                active=True,
                delivered_seq=blog.head_seq,
                consecutive_failures=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            session.add(webhook)
            await session.flush()
            audit.record(
                session,
                actor,
                "webhook.created",
                blog_id=blog.id,
                details={"webhook_id": webhook.id},
            )
            return to_webhook_public(webhook, blog)

    async def for_blog(self, slug: str) -> list[WebhookPublic]:
        async with self.database.read_session() as session:
            blog = await find_blog(session, slug)
            webhooks = await session.scalars(
                select(Webhook).where(Webhook.blog_id == blog.id).order_by(Webhook.id)
            )
            return [to_webhook_public(webhook, blog) for webhook in webhooks]

    async def get(self, slug: str, webhook_id: int) -> WebhookPublic:
        async with self.database.read_session() as session:
            blog, webhook = await _find(session, slug, webhook_id)
            return to_webhook_public(webhook, blog)

    async def update(
        self, slug: str, webhook_id: int, data: WebhookUpdate, actor: Principal = SYSTEM
    ) -> WebhookPublic:
        sealed = (
            self._box().seal(data.secret.get_secret_value()) if data.secret is not MISSING else None
        )
        if data.url is not MISSING:
            await self._check_target(data.url)
        now = utc_now()
        async with self.database.write_session() as session:
            blog, webhook = await _find(session, slug, webhook_id)
            if data.description is not MISSING:
                webhook.description = data.description
            if sealed is not None:
                webhook.secret_ciphertext = sealed
            if data.url is not MISSING and data.url != webhook.url:
                webhook.url = data.url
                # A corrected address is worth trying at once.
                webhook.consecutive_failures = 0
                webhook.next_attempt_at = now
            if data.active is True and not webhook.active:
                webhook.active = True
                webhook.disabled_reason = None
                webhook.disabled_at = None
                webhook.consecutive_failures = 0
                webhook.next_attempt_at = now
            elif data.active is False and webhook.active:
                webhook.active = False
                webhook.disabled_reason = PAUSED_REASON
                webhook.disabled_at = now
            webhook.updated_at = now
            sent = sorted(
                name for name in WebhookUpdate.model_fields if name in data.model_fields_set
            )
            audit.record(
                session,
                actor,
                "webhook.updated",
                blog_id=blog.id,
                details={"webhook_id": webhook.id, "fields": sent, "active": webhook.active},
            )
            return to_webhook_public(webhook, blog)

    async def delete(self, slug: str, webhook_id: int, actor: Principal = SYSTEM) -> None:
        async with self.database.write_session() as session:
            blog, webhook = await _find(session, slug, webhook_id)
            # Its delivery history goes with it (ON DELETE CASCADE).
            await session.execute(delete(Webhook).where(Webhook.id == webhook.id))
            audit.record(
                session,
                actor,
                "webhook.deleted",
                blog_id=blog.id,
                details={"webhook_id": webhook.id},
            )

    async def deliveries(
        self, slug: str, webhook_id: int, limit: int
    ) -> list[WebhookDeliveryPublic]:
        """The most recent delivery attempts, newest first."""
        async with self.database.read_session() as session:
            _blog, webhook = await _find(session, slug, webhook_id)
            attempts = await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook.id)
                .order_by(WebhookDelivery.id.desc())
                .limit(limit)
            )
            return [to_delivery_public(attempt) for attempt in attempts]

    def _box(self) -> SecretBox:
        if self.box is None:
            raise SecretKeyMissing(
                "Webhooks need BULLETIN_SECRET_KEY set on the server: signing secrets are "
                "stored encrypted with it. Nothing was stored."
            )
        return self.box

    async def _check_target(self, url: str) -> None:
        try:
            async with asyncio.timeout(self.settings.webhook_connect_timeout_seconds):
                await resolve_target(url, allow_private=self.settings.webhook_allow_private_targets)
        except TimeoutError as slow:
            raise WebhookTargetRefused(
                "Webhooks cannot be sent to this URL.",
                fields={"url": "its host could not be resolved in time"},
            ) from slow
        except TargetRefused as refused:
            raise WebhookTargetRefused(
                "Webhooks cannot be sent to this URL.", fields={"url": str(refused)}
            ) from refused


async def _find(session: AsyncSession, slug: str, webhook_id: int) -> tuple[Blog, Webhook]:
    blog = await find_blog(session, slug)
    return blog, await find_in_blog(session, Webhook, blog, webhook_id, what="webhook")
