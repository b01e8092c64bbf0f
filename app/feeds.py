"""Atom (RFC 4287) and JSON Feed 1.1 for one blog: its newest entries and recent deletions.

Ids are tag: URIs on the entry id, so they never change through edits; `updated` and
`date_modified` are the entry's last change of any kind (a minor fix too, so that a reader's
copy is replaced). Each entry's content is its sanitised body HTML followed by its public
correction notes, not the page's entry template: feeds carry the headline, times, authors and media
in fields of their own, which the template would repeat inside the content. Images and
videos become enclosures (JSON Feed attachments) with their captions and credits;
embeds become related links.

Deletions: Atom lists an RFC 6721 tombstone for every entry taken out of public view
(deleted, or back to draft) among the newest DELETIONS_WINDOW changes of the log, and
JSON Feed the same list under `_bulletin.deleted`. A poller that reads the feed at least
once per that many changes sees every deletion; `/events?since=` has all of them.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.embeds.cards import feed_card_html
from app.models import Blog
from app.queries import EntryFilter, head_changed_at, list_entries, recent_deletions
from app.rendering import WEB_DIR, absolute_url, entry_path, local_time_label, plain_text
from app.schemas import EntryPublic, MediaPublic

FEED_SIZE = 50
DELETIONS_WINDOW = 200
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_MEDIA_TYPE = "application/feed+json; charset=utf-8"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
TITLE_CHARS = 80
# Files whose type the URL shows; anything else is announced as plain bytes.
MEDIA_TYPES = {
    ".avif": "image/avif",
    ".gif": "image/gif",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
# XML 1.0 cannot carry these characters at all, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class FeedLinks:
    page: str
    atom: str
    json: str

    @classmethod
    def of(cls, public_base_url: str, slug: str) -> "FeedLinks":
        page = f"{public_base_url.rstrip('/')}/blogs/{slug}"
        return cls(page=page, atom=f"{page}/feed.atom", json=f"{page}/feed.json")


@dataclass(frozen=True)
class Attachment:
    kind: str
    url: str
    mime_type: str
    caption: str
    credit: str
    alt: str
    # Embeds of a known provider: its key and the post's or video's title, as published.
    provider: str | None = None
    embed_title: str = ""

    @property
    def title(self) -> str:
        """Caption and credit in one line, for formats with a single title field."""
        if self.caption and self.credit:
            return f"{self.caption} ({self.credit})"
        return self.caption or self.embed_title


@dataclass(frozen=True)
class FeedEntry:
    id: str
    entry_id: int
    url: str
    headline: str | None
    title: str
    content_html: str
    published: str
    updated: str
    authors: list[dict[str, str]]
    key_event: bool
    # The newsroom's tags of the entry (normalised).
    tags: list[str]
    pinned: bool
    version: int
    enclosures: list[Attachment]
    related: list[Attachment]


@dataclass(frozen=True)
class Deletion:
    id: str
    entry_id: int
    when: str


@dataclass(frozen=True)
class Feed:
    id: str
    slug: str
    title: str
    summary_html: str
    topics: list[str]
    ended: bool
    head_seq: int
    updated: str
    links: FeedLinks
    status_scheme: str
    entries: list[FeedEntry] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    generator_version: str = __version__


def rfc3339(moment: datetime) -> str:
    """UTC with microseconds: an edit within the same second still changes `updated`."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def tag_uri(public_base_url: str, blog: Blog) -> str:
    """The blog's tag: URI (RFC 4151): the public host and the day the blog was created."""
    authority = urlsplit(public_base_url).hostname or "localhost"
    return f"tag:{authority},{blog.created_at.astimezone(UTC):%Y-%m-%d}:{blog.slug}"


async def read_feed(session: AsyncSession, blog: Blog, public_base_url: str) -> Feed:
    """The newest FEED_SIZE published entries and the recent deletions of a blog."""
    page = await list_entries(session, blog, limit=FEED_SIZE, before=None, filter=EntryFilter())
    deletions = await recent_deletions(session, blog, DELETIONS_WINDOW)
    feed_id = tag_uri(public_base_url, blog)
    links = FeedLinks.of(public_base_url, blog.slug)
    return Feed(
        id=feed_id,
        slug=blog.slug,
        title=blog.title,
        summary_html=blog.summary_html,
        topics=list(blog.topics),
        ended=blog.status == "ended",
        head_seq=blog.head_seq,
        updated=rfc3339(await head_changed_at(session, blog)),
        links=links,
        status_scheme=f"{public_base_url.rstrip('/')}/#status",
        entries=[
            _feed_entry(entry, feed_id, links, blog.timezone, public_base_url)
            for entry in page.items
        ],
        deletions=[
            Deletion(id=f"{feed_id}/entry/{entry_id}", entry_id=entry_id, when=rfc3339(when))
            for entry_id, when in deletions
        ],
    )


def _feed_entry(
    entry: EntryPublic, feed_id: str, links: FeedLinks, time_zone: str, base_url: str
) -> FeedEntry:
    media = [_attachment(item, base_url) for item in entry.media]
    return FeedEntry(
        id=f"{feed_id}/entry/{entry.id}",
        entry_id=entry.id,
        url=absolute_url(base_url, entry_path(entry.blog, entry.id)),
        headline=entry.headline,
        title=entry.headline or _fallback_title(entry, time_zone),
        # Corrections, then an embed's static card, follow the body (feed readers show no
        # frames of ours).
        content_html=entry.body
        + _corrections_html(entry, time_zone)
        + "".join(feed_card_html(item, base_url) for item in entry.media),
        published=rfc3339(entry.published_at),
        updated=rfc3339(entry.updated_at),
        authors=[
            {"name": author.name, **({"url": author.url} if author.url else {})}
            for author in entry.authors
        ],
        key_event=entry.key_event,
        tags=entry.tags or [],
        pinned=entry.pinned,
        version=entry.version,
        enclosures=[item for item in media if item.kind in {"image", "video"}],
        related=[item for item in media if item.kind not in {"image", "video"}],
    )


def _corrections_html(entry: EntryPublic, time_zone: str) -> str:
    """Each public correction note, as the page shows it: a paragraph after the body."""
    return "".join(
        f'<p class="correction"><strong>Correction:</strong> {escape(correction.note)} '
        f"({escape(local_time_label(correction.at, time_zone))})</p>"
        for correction in entry.corrections or []
    )


def _attachment(item: MediaPublic, base_url: str) -> Attachment:
    path = urlsplit(item.url).path.lower()
    suffix = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
    return Attachment(
        kind=item.kind,
        url=absolute_url(base_url, item.url),
        mime_type=MEDIA_TYPES.get(suffix, UNKNOWN_MEDIA_TYPE)
        if item.kind != "embed"
        else "text/html",
        caption=item.caption,
        credit=item.credit,
        alt=item.alt,
        provider=item.embed.provider if item.embed else None,
        embed_title=(item.embed.title or item.embed.text or "")[:300] if item.embed else "",
    )


def _fallback_title(entry: EntryPublic, time_zone: str) -> str:
    """Atom needs a title: the start of the text, else the first caption, else the time."""
    text = plain_text(entry.body, TITLE_CHARS)
    if text:
        return text
    caption = next((item.caption for item in entry.media if item.caption), "")
    return caption or local_time_label(entry.published_at, time_zone)


def _xml_safe(value: object) -> object:
    """Drop the characters XML cannot carry; the environment then escapes the rest."""
    if value is None:
        return ""
    return _NOT_XML.sub("", value) if isinstance(value, str) else value


class FeedWriter:
    """Writes a Feed as Atom (from `web/templates/feeds/atom.xml`) or as JSON Feed."""

    def __init__(self, templates_dir: Path = WEB_DIR / "templates") -> None:
        environment = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=True,
            finalize=_xml_safe,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._atom = environment.get_template("feeds/atom.xml")

    def atom(self, feed: Feed) -> bytes:
        return self._atom.render(feed=feed).encode()

    def json_feed(self, feed: Feed) -> bytes:
        document: dict[str, Any] = {
            "version": JSON_FEED_VERSION,
            "title": feed.title,
            "home_page_url": feed.links.page,
            "feed_url": feed.links.json,
        }
        description = plain_text(feed.summary_html)
        if description:
            document["description"] = description
        if feed.ended:
            document["expired"] = True
        document["items"] = [_json_item(entry) for entry in feed.entries]
        document["_bulletin"] = {
            "slug": feed.slug,
            "status": "ended" if feed.ended else "live",
            "topics": feed.topics,
            "head_seq": feed.head_seq,
            "updated": feed.updated,
            "deleted": [
                {"id": deletion.id, "entry_id": deletion.entry_id, "deleted_at": deletion.when}
                for deletion in feed.deletions
            ],
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _json_item(entry: FeedEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.id, "url": entry.url}
    if entry.headline:
        item["title"] = entry.headline
    item["content_html"] = entry.content_html
    item["date_published"] = entry.published
    item["date_modified"] = entry.updated
    if entry.authors:
        item["authors"] = entry.authors
    tags = (["key-event"] if entry.key_event else []) + entry.tags
    if tags:
        item["tags"] = list(dict.fromkeys(tags))
    attachments = entry.enclosures + entry.related
    if attachments:
        item["attachments"] = [_json_attachment(attachment) for attachment in attachments]
    item["_bulletin"] = {
        "entry_id": entry.entry_id,
        "version": entry.version,
        "key_event": entry.key_event,
        "tags": entry.tags,
        "pinned": entry.pinned,
    }
    return item


def _json_attachment(attachment: Attachment) -> dict[str, Any]:
    document: dict[str, Any] = {"url": attachment.url, "mime_type": attachment.mime_type}
    if attachment.title:
        document["title"] = attachment.title
    document["_bulletin"] = {
        "kind": attachment.kind,
        "caption": attachment.caption,
        "credit": attachment.credit,
        "alt": attachment.alt,
    }
    if attachment.provider:
        document["_bulletin"]["provider"] = attachment.provider
    return document
