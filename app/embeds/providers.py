"""The one allow-list of embed providers: which URLs belong to whom, where each asks oEmbed,
and which origin its player is loaded from once a reader clicks.

A URL that matches no provider is kept as a plain link. The frame URL is built here from
the parts of the post's URL (or, for Bluesky, the post's AT URI in its oEmbed answer),
never taken from a provider's markup, so only the origins listed here are ever framed.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from app.config import web_origin

FrameBuilder = Callable[["Match", str | None], str | None]


@dataclass(frozen=True)
class Match:
    """A URL recognised as a provider's: the parts its frame URL is made of."""

    provider: "Provider"
    url: str
    parts: dict[str, str]
    # A Mastodon instance's origin ("https://mastodon.social"); others: None.
    instance: str | None = None

    def frame_url(self, at_uri: str | None = None) -> str | None:
        """Where the player or post is loaded from after the click, if it can be known."""
        return self.provider.frame(self, at_uri)

    @property
    def frame_origin(self) -> str:
        return self.instance or self.provider.frame_origin


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    kind: Literal["video", "post"]
    patterns: tuple[re.Pattern[str], ...]
    oembed_endpoint: str
    frame_origin: str
    frame: FrameBuilder


def _pattern(*expressions: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(expression, re.IGNORECASE) for expression in expressions)


YOUTUBE_ID = r"(?P<id>[A-Za-z0-9_-]{11})"
AT_URI = re.compile(
    r"^at://(?P<did>did:[a-z]+:[A-Za-z0-9._:%-]{1,200})/app\.bsky\.feed\.post/"
    r"(?P<rkey>[A-Za-z0-9._~:-]{1,100})$"
)


def _bluesky_frame(match: Match, at_uri: str | None) -> str | None:
    did = match.parts["actor"] if match.parts["actor"].startswith("did:") else None
    if at_uri is not None:
        parsed = AT_URI.match(at_uri)
        if parsed is None or parsed["rkey"] != match.parts["id"]:
            return None
        did = parsed["did"]
    if did is None:
        return None
    return f"https://embed.bsky.app/embed/{did}/app.bsky.feed.post/{match.parts['id']}"


def _facebook_frame(match: Match, _at_uri: str | None) -> str | None:
    plugin = "video" if "video" in match.parts.get("kind", "") or "watch" in match.url else "post"
    return f"https://www.facebook.com/plugins/{plugin}.php?href={quote(match.url, safe='')}"


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        key="youtube",
        name="YouTube",
        kind="video",
        patterns=_pattern(
            rf"^https?://(?:www\.|m\.)?youtube\.com/watch\?(?:[^#]*&)?v={YOUTUBE_ID}(?:[&#].*)?$",
            rf"^https?://(?:www\.|m\.)?youtube\.com/(?:shorts|live|embed)/{YOUTUBE_ID}(?:[/?#].*)?$",
            rf"^https?://youtu\.be/{YOUTUBE_ID}(?:[/?#].*)?$",
        ),
        oembed_endpoint="https://www.youtube.com/oembed",
        # YouTube's privacy-enhanced mode: no cookies until the reader plays the video.
        frame_origin="https://www.youtube-nocookie.com",
        frame=lambda m, _a: f"https://www.youtube-nocookie.com/embed/{m.parts['id']}",
    ),
    Provider(
        key="vimeo",
        name="Vimeo",
        kind="video",
        patterns=_pattern(
            r"^https?://(?:www\.|player\.)?vimeo\.com/(?:[^?#]*/)?(?P<id>\d{1,12})"
            r"(?:[/?#].*)?$"
        ),
        oembed_endpoint="https://vimeo.com/api/oembed.json",
        frame_origin="https://player.vimeo.com",
        frame=lambda m, _a: f"https://player.vimeo.com/video/{m.parts['id']}?dnt=1",
    ),
    Provider(
        key="x",
        name="X",
        kind="post",
        patterns=_pattern(
            r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(?P<user>\w{1,15})/"
            r"status(?:es)?/(?P<id>\d{1,20})(?:[/?#].*)?$"
        ),
        oembed_endpoint="https://publish.twitter.com/oembed",
        frame_origin="https://platform.twitter.com",
        frame=lambda m, _a: (
            f"https://platform.twitter.com/embed/Tweet.html?id={m.parts['id']}&dnt=true"
        ),
    ),
    Provider(
        key="instagram",
        name="Instagram",
        kind="post",
        patterns=_pattern(
            r"^https?://(?:www\.)?instagram\.com/(?:[\w.]{1,30}/)?(?P<kind>p|reel|tv)/"
            r"(?P<id>[A-Za-z0-9_-]{1,40})/?(?:[?#].*)?$"
        ),
        # Meta's oEmbed needs an app's access token (BULLETIN_EMBED_OEMBED_ACCESS_TOKENS).
        oembed_endpoint="https://graph.facebook.com/v19.0/instagram_oembed",
        frame_origin="https://www.instagram.com",
        frame=lambda m, _a: f"https://www.instagram.com/{m.parts['kind']}/{m.parts['id']}/embed/",
    ),
    Provider(
        key="tiktok",
        name="TikTok",
        kind="video",
        patterns=_pattern(
            r"^https?://(?:www\.|m\.)?tiktok\.com/@[\w.-]{1,40}/video/(?P<id>\d{1,25})"
            r"(?:[/?#].*)?$"
        ),
        oembed_endpoint="https://www.tiktok.com/oembed",
        frame_origin="https://www.tiktok.com",
        frame=lambda m, _a: f"https://www.tiktok.com/embed/v2/{m.parts['id']}",
    ),
    Provider(
        key="bluesky",
        name="Bluesky",
        kind="post",
        patterns=_pattern(
            r"^https?://bsky\.app/profile/(?P<actor>[A-Za-z0-9._:%-]{1,253})/post/"
            r"(?P<id>[A-Za-z0-9]{1,20})/?(?:[?#].*)?$"
        ),
        oembed_endpoint="https://embed.bsky.app/oembed",
        frame_origin="https://embed.bsky.app",
        frame=_bluesky_frame,
    ),
    Provider(
        key="mastodon",
        name="Mastodon",
        kind="post",
        # On the instances configured (BULLETIN_EMBED_MASTODON_INSTANCES) only.
        patterns=_pattern(
            r"^(?P<origin>https?://[^/?#]+)/@(?P<user>\w{1,30})(?:@[\w.-]+)?/"
            r"(?P<id>\d{1,20})/?(?:[?#].*)?$"
        ),
        oembed_endpoint="{instance}/api/oembed",
        frame_origin="",
        frame=lambda m, _a: f"{m.instance}/@{m.parts['user']}/{m.parts['id']}/embed",
    ),
    Provider(
        key="facebook",
        name="Facebook",
        kind="post",
        patterns=_pattern(
            r"^https?://(?:www\.|m\.)?facebook\.com/[\w.-]{1,80}/(?P<kind>posts|videos)/"
            r"(?P<id>[\w-]{1,80})/?(?:[?#].*)?$",
            r"^https?://(?:www\.|m\.)?facebook\.com/(?P<kind>watch)/?\?(?:[^#]*&)?v=(?P<id>\d{1,25})"
            r"(?:[&#].*)?$",
        ),
        oembed_endpoint="https://graph.facebook.com/v19.0/oembed_post",
        frame_origin="https://www.facebook.com",
        frame=_facebook_frame,
    ),
)
BY_KEY: Mapping[str, Provider] = {provider.key: provider for provider in PROVIDERS}


class Providers:
    """The allow-list as configured: oEmbed endpoints may be replaced (a proxy, or a test's
    local provider), and Mastodon posts are recognised on the instances listed."""

    def __init__(
        self, endpoints: Mapping[str, str] | None = None, mastodon_instances: Sequence[str] = ()
    ) -> None:
        unknown = set(endpoints or {}) - set(BY_KEY)
        if unknown:
            raise ValueError(
                f"no embed provider is called {sorted(unknown)}; known: {sorted(BY_KEY)}"
            )
        self.endpoints = {p.key: (endpoints or {}).get(p.key, p.oembed_endpoint) for p in PROVIDERS}
        self.endpoint_configured = set(endpoints or {})
        self.mastodon_instances = tuple(
            origin
            for origin in (
                web_origin(i if "://" in i else f"https://{i}") for i in mastodon_instances
            )
            if origin and origin != "null"
        )

    def match(self, url: str) -> Match | None:
        """The provider a URL belongs to, or None: then it is shown as a plain link."""
        if len(url) > 2000:
            return None
        for provider in PROVIDERS:
            for pattern in provider.patterns:
                found = pattern.match(url)
                if found is None:
                    continue
                parts = {name: value for name, value in found.groupdict().items() if value}
                instance = None
                if provider.key == "mastodon":
                    instance = web_origin(parts.pop("origin"))
                    if instance not in self.mastodon_instances:
                        continue
                return Match(provider=provider, url=url, parts=parts, instance=instance)
        return None

    def endpoint(self, match: Match) -> str:
        return self.endpoints[match.provider.key].replace("{instance}", match.instance or "")

    def frame_origins(self) -> list[str]:
        """Every origin a reader's page may frame after a click (its frame-src)."""
        fixed = [p.frame_origin for p in PROVIDERS if p.frame_origin]
        return list(dict.fromkeys([*fixed, *self.mastodon_instances]))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
