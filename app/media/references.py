"""Entries name uploaded photos by `media_id`; the write path resolves each to what the page,
the feeds and the JSON show of it (its renditions, size and placeholder), inside its own
transaction, and applies the blog's alt-text policy.

The resolved form is stored with the entry, so reading an entry never joins the media
table, and an event's `html` is rendered from exactly what the entry holds.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import MISSING
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.models import Blog, StoredMedia
from app.schemas import Media, RenditionPublic, UploadedMediaPublic


class AltTextRequired(InvalidInput):
    code = "alt_text_required"


async def resolve_media(
    session: AsyncSession,
    blog: Blog,
    items: Sequence[Media],
    embeds: Mapping[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The entry's media as stored: items by URL as sent, uploads with their renditions,
    embeds of known providers with their snapshots (`embeds`, by URL: app/embeds/)."""
    wanted = {item.media_id for item in items if item.media_id is not MISSING}
    found: dict[int, StoredMedia] = {}
    if wanted:
        rows = await session.scalars(
            select(StoredMedia).where(StoredMedia.id.in_(wanted), StoredMedia.blog_id == blog.id)
        )
        found = {row.id: row for row in rows}
    missing = {
        f"media.{index}.media_id": f"no photo {item.media_id} was uploaded to this blog"
        for index, item in enumerate(items)
        if item.media_id is not MISSING and item.media_id not in found
    }
    if missing:
        raise InvalidInput("An entry names media that this blog does not have.", fields=missing)
    resolved = []
    for item in items:
        stored = item.model_dump()
        if item.media_id is not MISSING:
            row = found[item.media_id]
            renditions = public_renditions(row)
            stored |= {
                "url": largest_jpeg(renditions),
                "width": row.width,
                "height": row.height,
                "placeholder": row.placeholder,
                "renditions": [r.model_dump() for r in renditions],
            }
        elif item.kind == "embed" and embeds and isinstance(item.url, str) and item.url in embeds:
            stored["embed"] = embeds[item.url]
        resolved.append(stored)
    return resolved


def refuse_images_without_alt_text(blog: Blog, media: Sequence[dict[str, Any]]) -> None:
    """On a blog that requires it, every image published needs alt text."""
    if not blog.require_alt_text:
        return
    lacking = {
        f"media.{index}.alt": "required on this blog: describe the image for readers who "
        "cannot see it"
        for index, item in enumerate(media)
        if item["kind"] == "image" and not str(item.get("alt", "")).strip()
    }
    if lacking:
        raise AltTextRequired(
            f"Blog '{blog.slug}' requires alt text for every image it publishes.",
            fields=lacking,
        )


def public_renditions(row: StoredMedia) -> list[RenditionPublic]:
    return [
        RenditionPublic(
            format=r["format"], width=r["width"], height=r["height"], bytes=r["bytes"], url=r["url"]
        )
        for r in row.renditions
    ]


def largest_jpeg(renditions: list[RenditionPublic]) -> str:
    return max((r for r in renditions if r.format == "jpeg"), key=lambda r: r.width).url


def to_uploaded_public(row: StoredMedia, slug: str) -> UploadedMediaPublic:
    renditions = public_renditions(row)
    return UploadedMediaPublic(
        id=row.id,
        blog=slug,
        source_format=row.source_format,  # type: ignore[arg-type]
        width=row.width,
        height=row.height,
        placeholder=row.placeholder,
        url=largest_jpeg(renditions),
        renditions=renditions,
        created_at=row.created_at,
    )
