"""At publish time, each embed of a known provider is looked up through oEmbed and kept as
a snapshot with the entry's media: who posted it, its title or text (plain text, made from
sanitised HTML), its canonical URL, the frame to load after a reader's click, and its
thumbnail, fetched and processed like an upload so readers never load it from the provider.

Look-ups run before the entry's transaction (never while it holds the blog's lock), all of
an entry's at once, within BULLETIN_EMBED_RESOLVE_SECONDS altogether. Whatever goes wrong
(a provider down, slow, answering an error, garbage or too much) leaves a plain link card:
a publish never fails because of a provider. The requests go through app/outgoing.py:
public addresses only, no redirects that are not checked again, bounded in bytes.
"""

import asyncio
import io
import json
import logging
import re
import ssl
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import httpx

from app import __version__
from app.config import Settings
from app.embeds.providers import Match, Providers
from app.errors import BulletinError
from app.media.library import MediaLibrary
from app.outgoing import FetchFailed, fetch, outgoing_client
from app.rendering import plain_text
from app.sanitising import sanitise_html
from app.schemas import WEB_URL

logger = logging.getLogger("bulletin.embeds")

TITLE_CHARS = 300
TEXT_CHARS = 1000
NAME_CHARS = 200
# Mastodon's page is read only for its <link rel="alternate" ... json+oembed> in <head>.
PAGE_MAX_BYTES = 512 * 1024
BLUESKY_URI = re.compile(r'data-bluesky-uri="(at://[^"]{1,400})"')
# "</p>&mdash; Author" reads "… — Author".
BLOCK_END = re.compile(r"</(?:p|li|blockquote|h[2-4])>")
Snapshot = dict[str, Any]


def plain_link(match: Match) -> Snapshot:
    """What is kept when the provider told nothing: its name, the link, and the frame when
    the URL alone says where it is."""
    return {
        "provider": match.provider.key,
        "provider_name": match.provider.name,
        "resolved": False,
        "canonical_url": match.url,
        "title": None,
        "text": None,
        "author_name": None,
        "author_url": None,
        "frame_url": match.frame_url(),
        "thumbnail": None,
    }


def _text(value: object, limit: int) -> str | None:
    """Provider text as plain text: any markup sanitised away first (scripts and all)."""
    if not isinstance(value, str):
        return None
    clean = BLOCK_END.sub(r"\g<0> ", sanitise_html(value.replace("\x00", "")))
    text = plain_text(clean, limit)
    return text or None


def _web_url(value: object) -> str | None:
    return (
        value
        if isinstance(value, str) and WEB_URL.fullmatch(value) and len(value) <= 2000
        else None
    )


class _OembedLink(HTMLParser):
    """Finds `<link rel="alternate" type="application/json+oembed" href>` in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link" or self.href is not None:
            return
        found = {name: value or "" for name, value in attrs}
        if "alternate" in found.get("rel", "").lower().split() and (
            found.get("type", "").lower() == "application/json+oembed"
        ):
            self.href = found.get("href") or None


class EmbedResolver:
    """Turns embed URLs into snapshots; knows the configured providers."""

    def __init__(self, settings: Settings, media: MediaLibrary) -> None:
        self.providers = Providers(
            settings.embed_oembed_endpoints, settings.embed_mastodon_instances
        )
        self.media = media
        self.allow_private = settings.embed_allow_private_targets
        self.seconds = settings.embed_resolve_seconds
        self.oembed_max_bytes = settings.embed_oembed_max_bytes
        self.thumbnail_max_bytes = settings.embed_thumbnail_max_bytes
        self.meta_token = (
            settings.embed_meta_access_token.get_secret_value()
            if settings.embed_meta_access_token
            else None
        )
        self._timeout = httpx.Timeout(self.seconds)
        self._tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        # Reading the CA bundle is blocking file work: once, off the event loop.
        self._tls = await asyncio.to_thread(httpx.create_ssl_context, trust_env=False)

    def frame_origins(self) -> list[str]:
        return self.providers.frame_origins()

    async def snapshots(
        self, urls: Iterable[str], known: Mapping[str, Snapshot]
    ) -> dict[str, Snapshot]:
        """A snapshot for every URL of a known provider: the one kept already (an edit that
        keeps its embed does not look it up again), else a fresh look-up."""
        matches = {}
        for url in urls:
            match = self.providers.match(url)
            if match is not None and url not in matches:
                matches[url] = match
        found = {url: known[url] for url in matches if url in known}
        wanted = [match for url, match in matches.items() if url not in found]
        if not wanted:
            return found
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        async with outgoing_client(
            self._timeout, f"Bulletin/{__version__} (oEmbed)", self._tls
        ) as client:
            made = await asyncio.gather(
                *(self._snapshot(client, match, deadline) for match in wanted)
            )
        return found | {match.url: snapshot for match, snapshot in zip(wanted, made, strict=True)}

    async def _snapshot(self, client: httpx.AsyncClient, match: Match, deadline: float) -> Snapshot:
        snapshot = plain_link(match)
        try:
            async with asyncio.timeout_at(deadline):
                answer = await self._oembed(client, match)
        except (FetchFailed, TimeoutError, ValueError) as failure:
            logger.info(
                "embed look-up at %s failed: %s", match.provider.name, failure or "timed out"
            )
            return snapshot
        snapshot |= self._read(match, answer)
        thumbnail_url = _web_url(answer.get("thumbnail_url"))
        if thumbnail_url is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    snapshot["thumbnail"] = await self._thumbnail(client, thumbnail_url)
            except (FetchFailed, TimeoutError, BulletinError) as failure:
                logger.info(
                    "embed thumbnail from %s not kept: %s",
                    match.provider.name,
                    failure or "timed out",
                )
        return snapshot

    async def _oembed(self, client: httpx.AsyncClient, match: Match) -> dict[str, Any]:
        endpoint = self.providers.endpoint(match)
        if (
            match.provider.key == "mastodon"
            and match.provider.key not in self.providers.endpoint_configured
        ):
            endpoint = await self._discover(client, match) or endpoint
        query: dict[str, str] = {"url": match.url, "format": "json", "maxwidth": "640"}
        if match.provider.key in ("instagram", "facebook") and self.meta_token:
            query["access_token"] = self.meta_token
        separator = "&" if "?" in endpoint else "?"
        fetched = await fetch(
            client,
            f"{endpoint}{separator}{urlencode(query)}",
            allow_private=self.allow_private,
            max_bytes=self.oembed_max_bytes,
            accept="application/json",
        )
        try:
            answer = json.loads(fetched.body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"the answer is not JSON ({error})") from None
        if not isinstance(answer, dict) or answer.get("type") not in (
            "video",
            "rich",
            "photo",
            "link",
        ):
            raise ValueError("the answer is not an oEmbed object")
        return answer

    async def _discover(self, client: httpx.AsyncClient, match: Match) -> str | None:
        """The oEmbed endpoint a Mastodon post's page names, if on the same instance."""
        try:
            page = await fetch(
                client,
                match.url,
                allow_private=self.allow_private,
                max_bytes=PAGE_MAX_BYTES,
                accept="text/html",
            )
        except FetchFailed:
            return None
        finder = _OembedLink()
        finder.feed(page.body.decode("utf-8", "replace"))
        href = finder.href
        if href is None or not href.startswith(f"{match.instance}/"):
            return None
        # The discovered URL already names the post; the query is set again by the caller.
        return href.split("?", 1)[0]

    def _read(self, match: Match, answer: dict[str, Any]) -> Snapshot:
        markup = answer.get("html")
        at_uri = None
        if match.provider.key == "bluesky" and isinstance(markup, str):
            found = BLUESKY_URI.search(markup)
            at_uri = found.group(1) if found else None
        canonical = _web_url(answer.get("url"))
        if canonical is None or self.providers.match(canonical) is None:
            canonical = match.url
        return {
            "resolved": True,
            "canonical_url": canonical,
            "title": _text(answer.get("title"), TITLE_CHARS),
            # Posts' text is in their markup (X, Bluesky); players' markup has none.
            "text": _text(markup, TEXT_CHARS) if match.provider.kind == "post" else None,
            "author_name": _text(answer.get("author_name"), NAME_CHARS),
            "author_url": _web_url(answer.get("author_url")),
            "frame_url": match.frame_url(at_uri) if at_uri else match.frame_url(),
        }

    async def _thumbnail(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        fetched = await fetch(
            client,
            url,
            allow_private=self.allow_private,
            max_bytes=self.thumbnail_max_bytes,
            accept="image/*",
        )
        photo = await self.media.process_and_store(io.BytesIO(fetched.body))
        return {
            "width": photo.width,
            "height": photo.height,
            "placeholder": photo.placeholder,
            "renditions": self.media.public_renditions(photo),
        }
