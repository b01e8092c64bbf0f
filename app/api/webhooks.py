from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.api.deps import BlogDep, IdPath, ServicesDep, role_on_blog
from app.people.roles import Principal
from app.schemas import (
    ASCII_DIGITS,
    RATE_LIMITED,
    ErrorPublic,
    WebhookCreate,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
    error_responses,
)
from app.webhooks.registry import WebhookRegistry

router = APIRouter(
    prefix="/api/v1/blogs/{slug}/webhooks", tags=["webhooks"], responses=RATE_LIMITED
)

SECRET_KEY_MISSING: dict[int | str, dict[str, object]] = {
    503: {
        "model": ErrorPublic,
        "description": "The server has no BULLETIN_SECRET_KEY to encrypt signing secrets with.",
    }
}
WRITE_ERRORS = {**error_responses(400, 401, 403, 404, 413, 415, 422), **SECRET_KEY_MISSING}
READ_ERRORS = error_responses(401, 403, 404, 422)


def get_webhook_registry(services: ServicesDep) -> WebhookRegistry:
    return services.webhooks


WebhookRegistryDep = Annotated[WebhookRegistry, Depends(get_webhook_registry)]
OwnerDep = Annotated[Principal, Depends(role_on_blog("owner", "Managing webhooks"))]


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
async def create_webhook(
    data: WebhookCreate, owner: OwnerDep, blog: BlogDep, registry: WebhookRegistryDep
) -> WebhookPublic:
    """Register a webhook (owner); it receives every event published from now on."""
    return await registry.create(blog.slug, data, owner)


@router.get("", responses=READ_ERRORS)
async def read_webhooks(
    _owner: OwnerDep, blog: BlogDep, registry: WebhookRegistryDep
) -> list[WebhookPublic]:
    """List a blog's webhooks with their delivery state (owner)."""
    return await registry.for_blog(blog.slug)


@router.get("/{webhook_id}", responses=READ_ERRORS)
async def read_webhook(
    webhook_id: IdPath, _owner: OwnerDep, blog: BlogDep, registry: WebhookRegistryDep
) -> WebhookPublic:
    """Read one webhook: delivered up to which seq, what is pending, the last failure (owner)."""
    return await registry.get(blog.slug, webhook_id)


@router.get("/{webhook_id}/deliveries", responses=READ_ERRORS)
async def read_webhook_deliveries(
    webhook_id: IdPath,
    _owner: OwnerDep,
    blog: BlogDep,
    registry: WebhookRegistryDep,
    limit: Annotated[int, Query(ge=1, le=500), ASCII_DIGITS] = 50,
) -> list[WebhookDeliveryPublic]:
    """The webhook's most recent delivery attempts, newest first (owner)."""
    return await registry.deliveries(blog.slug, webhook_id, limit)


@router.patch("/{webhook_id}", responses=WRITE_ERRORS)
async def update_webhook(
    webhook_id: IdPath,
    data: WebhookUpdate,
    owner: OwnerDep,
    blog: BlogDep,
    registry: WebhookRegistryDep,
) -> WebhookPublic:
    """Pause, re-enable or re-point a webhook, or replace its secret (owner)."""
    return await registry.update(blog.slug, webhook_id, data, owner)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=READ_ERRORS)
async def delete_webhook(
    webhook_id: IdPath, owner: OwnerDep, blog: BlogDep, registry: WebhookRegistryDep
) -> None:
    """Delete a webhook and its delivery history (owner); no new delivery starts."""
    await registry.delete(blog.slug, webhook_id, owner)
