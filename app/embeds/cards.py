"""The static card of an embed for places that show no page of ours: feeds (Atom, JSON
Feed) and structured data (JSON-LD). Text only from the snapshot, escaped; the thumbnail
from our own renditions; never the provider's frame or markup."""

from typing import Any

from markupsafe import escape

from app.rendering import absolute_url
from app.schemas import EmbedPublic, MediaPublic


def largest_thumbnail(embed: EmbedPublic, base_url: str) -> str | None:
    if embed.thumbnail is None:
        return None
    jpegs = [r for r in embed.thumbnail.renditions if r.format == "jpeg"]
    return absolute_url(base_url, max(jpegs, key=lambda r: r.width).url) if jpegs else None


def feed_card_html(item: MediaPublic, base_url: str) -> str:
    """The card as HTML a feed reader shows: who, what, the link; no script, no frame."""
    embed = item.embed
    if embed is None:
        return ""
    parts = ['<blockquote class="bulletin-embed">']
    thumbnail = largest_thumbnail(embed, base_url)
    if thumbnail is not None:
        parts.append(
            f'<p><a href="{escape(embed.canonical_url)}"><img src="{escape(thumbnail)}" '
            f'width="{embed.thumbnail.width}" height="{embed.thumbnail.height}" '  # type: ignore[union-attr]
            f'alt="{escape(item.alt)}"></a></p>'
        )
    who = escape(embed.provider_name)
    if embed.author_name:
        who += escape(" · ") + escape(embed.author_name)
    parts.append(f"<p><strong>{who}</strong></p>")
    for text in (embed.title, embed.text):
        if text:
            parts.append(f"<p>{escape(text)}</p>")
    parts.append(
        f'<p><a href="{escape(embed.canonical_url)}">View on {escape(embed.provider_name)}</a></p>'
    )
    parts.append("</blockquote>")
    return "".join(parts)


def shared_content(item: MediaPublic, base_url: str) -> dict[str, Any] | None:
    """schema.org's description of the embedded post or video, for a BlogPosting."""
    embed = item.embed
    if embed is None:
        return None
    video = embed.provider in ("youtube", "vimeo", "tiktok")
    document: dict[str, Any] = {
        "@type": "VideoObject" if video else "SocialMediaPosting",
        "url": embed.canonical_url,
        "publisher": {"@type": "Organization", "name": embed.provider_name},
    }
    if embed.title:
        document["name" if video else "headline"] = embed.title
    if embed.text:
        document["text"] = embed.text
    if embed.author_name:
        document["author"] = {
            "@type": "Person",
            "name": embed.author_name,
            **({"url": embed.author_url} if embed.author_url else {}),
        }
    thumbnail = largest_thumbnail(embed, base_url)
    if thumbnail is not None:
        document["thumbnailUrl" if video else "image"] = thumbnail
    return document
