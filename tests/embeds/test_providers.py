"""The allow-list of embed providers: which URLs each recognises, what its player is framed
from after the click, and the look-alikes it must not take for its own."""

import pytest

from app.embeds.providers import Providers

PROVIDERS = Providers(mastodon_instances=["mastodon.social"])


@pytest.mark.parametrize(
    ("url", "provider", "frame"),
    [
        (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42",
            "youtube",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://youtu.be/dQw4w9WgXcQ",
            "youtube",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://m.youtube.com/shorts/dQw4w9WgXcQ",
            "youtube",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        ("https://vimeo.com/76979871", "vimeo", "https://player.vimeo.com/video/76979871?dnt=1"),
        (
            "https://vimeo.com/channels/staffpicks/76979871",
            "vimeo",
            "https://player.vimeo.com/video/76979871?dnt=1",
        ),
        (
            "https://player.vimeo.com/video/76979871",
            "vimeo",
            "https://player.vimeo.com/video/76979871?dnt=1",
        ),
        (
            "https://x.com/citydesk/status/1864000000000000000",
            "x",
            "https://platform.twitter.com/embed/Tweet.html?id=1864000000000000000&dnt=true",
        ),
        (
            "https://mobile.twitter.com/citydesk/statuses/1864000000000000000",
            "x",
            "https://platform.twitter.com/embed/Tweet.html?id=1864000000000000000&dnt=true",
        ),
        (
            "https://www.instagram.com/p/C0aBcDeFgHi/",
            "instagram",
            "https://www.instagram.com/p/C0aBcDeFgHi/embed/",
        ),
        (
            "https://instagram.com/city.desk/reel/C0aBcDeFgHi?igsh=abc",
            "instagram",
            "https://www.instagram.com/reel/C0aBcDeFgHi/embed/",
        ),
        (
            "https://www.tiktok.com/@city.desk/video/7310000000000000000",
            "tiktok",
            "https://www.tiktok.com/embed/v2/7310000000000000000",
        ),
        (
            "https://m.tiktok.com/@citydesk/video/7310000000000000000?lang=en",
            "tiktok",
            "https://www.tiktok.com/embed/v2/7310000000000000000",
        ),
        (
            "https://bsky.app/profile/did:plc:abc123/post/3kxyz",
            "bluesky",
            "https://embed.bsky.app/embed/did:plc:abc123/app.bsky.feed.post/3kxyz",
        ),
        (
            "https://mastodon.social/@citydesk/113000000000000000",
            "mastodon",
            "https://mastodon.social/@citydesk/113000000000000000/embed",
        ),
        (
            "https://www.facebook.com/citydesk/posts/pfbid02abc",
            "facebook",
            "https://www.facebook.com/plugins/post.php?href="
            "https%3A%2F%2Fwww.facebook.com%2Fcitydesk%2Fposts%2Fpfbid02abc",
        ),
        (
            "https://www.facebook.com/citydesk/videos/1234567890/",
            "facebook",
            "https://www.facebook.com/plugins/video.php?href="
            "https%3A%2F%2Fwww.facebook.com%2Fcitydesk%2Fvideos%2F1234567890%2F",
        ),
        (
            "https://www.facebook.com/watch/?v=1234567890",
            "facebook",
            "https://www.facebook.com/plugins/video.php?href="
            "https%3A%2F%2Fwww.facebook.com%2Fwatch%2F%3Fv%3D1234567890",
        ),
    ],
)
def test_each_providers_post_urls_are_recognised_and_framed_from_its_own_origin(
    url: str, provider: str, frame: str
) -> None:
    match = PROVIDERS.match(url)
    assert match is not None, url
    assert match.provider.key == provider
    assert match.frame_url() == frame
    assert frame.startswith(match.frame_origin + "/")
    assert match.frame_origin in PROVIDERS.frame_origins()


@pytest.mark.parametrize(
    "url",
    [
        "https://vimeo.com.example.net/76979871",  # a look-alike host
        "https://evil.example/vimeo.com/76979871",
        "https://vimeo.com/about",  # a page, not a video
        "https://www.instagram.com/citydesk/",  # a profile, not a post
        "https://www.instagram.com/p/C0aBcDeFgHi/../../admin",
        "https://www.tiktok.com/@citydesk",  # a profile
        "https://www.tiktok.com/@citydesk/video/notanumber",
        "https://tiktok.com.example/@citydesk/video/7310000000000000000",
        "https://www.facebook.com/citydesk",  # a page
        "https://www.facebook.com/citydesk/photos/123",
        "https://facebook.com.example/citydesk/posts/pfbid02abc",
        "https://x.com/citydesk",  # a profile
        "javascript://x.com/citydesk/status/1",
        "https://mastodon.example/@citydesk/113000000000000000",  # an instance not configured
        "https://www.youtube.com/watch?v=short",  # not an 11-character id
    ],
)
def test_anything_else_stays_a_plain_link(url: str) -> None:
    assert PROVIDERS.match(url) is None, url


def test_a_url_too_long_to_be_a_post_is_no_providers() -> None:
    assert PROVIDERS.match("https://vimeo.com/76979871?" + "a" * 2000) is None
