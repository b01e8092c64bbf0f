"""Embeds of allow-listed providers, resolved at publish through oEmbed (a local provider on
127.0.0.1): the snapshot in the entry's JSON, a thumbnail kept as our own renditions, the
static card on the page and in the event's `html`, plain link cards when the provider fails
(the entry still publishes), sanitised text, feeds and JSON-LD."""

import json
import re
import time

import httpx
import pytest
from html5lib import HTMLParser

from app.config import Settings
from tests.support.clients import asgi_client
from tests.support.factories import ADMIN, SLUG, publish_entry, read_log
from tests.support.oembed_provider import OembedProvider
from tests.support.servers import running_app

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
PAGE = f"/blogs/{SLUG}"
BASE = "http://127.0.0.1:8000"
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
POST = "https://x.com/electiondesk/status/1790000000000000001"


def embed(url: str, **fields: str) -> dict:
    return {"kind": "embed", "url": url, **fields}


def parse(markup: str):
    return HTMLParser(strict=False, namespaceHTMLElements=False).parse(markup)


async def test_a_youtube_embed_is_kept_as_a_snapshot_with_our_own_thumbnail(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    entry = await publish_entry(client, headline="Polls close", media=[embed(VIDEO)])

    [item] = entry["media"]
    assert item["url"] == VIDEO
    snapshot = item["embed"]
    assert snapshot["provider"] == "youtube"
    assert snapshot["provider_name"] == "YouTube"
    assert snapshot["resolved"] is True
    assert snapshot["title"] == "Polls close across the state"
    assert snapshot["author_name"] == "Newsroom TV"
    assert snapshot["author_url"] == "https://www.youtube.com/@newsroomtv"
    assert snapshot["canonical_url"] == VIDEO
    # The privacy-enhanced player, built from the video's id (not the provider's markup).
    assert snapshot["frame_url"] == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    [lookup] = oembed.lookups("youtube")
    assert lookup["url"] == [VIDEO] and lookup["format"] == ["json"]
    thumbnail = snapshot["thumbnail"]
    assert (thumbnail["width"], thumbnail["height"]) == (480, 360)
    assert {r["format"] for r in thumbnail["renditions"]} == {"webp", "jpeg"}
    for rendition in thumbnail["renditions"]:
        assert rendition["url"].startswith("/media/")
        served = await client.get(rendition["url"])
        assert served.status_code == 200
        assert served.headers["content-type"] == f"image/{rendition['format']}"


async def test_a_post_keeps_its_text_as_plain_text(client: httpx.AsyncClient, blog: dict) -> None:
    entry = await publish_entry(client, media=[embed(POST)])

    snapshot = entry["media"][0]["embed"]
    assert snapshot["provider"] == "x"
    assert snapshot["text"] == "Turnout is at 61% & rising — Election Desk (@electiondesk)"
    assert snapshot["frame_url"] == (
        "https://platform.twitter.com/embed/Tweet.html?id=1790000000000000001&dnt=true"
    )


async def test_bluesky_frames_the_post_its_oembed_answer_names(
    client: httpx.AsyncClient, blog: dict
) -> None:
    url = "https://bsky.app/profile/field.example/post/3kxyz"
    entry = await publish_entry(client, media=[embed(url)])

    snapshot = entry["media"][0]["embed"]
    assert snapshot["text"] == "Queues at Hill Road"
    assert snapshot["frame_url"] == (
        "https://embed.bsky.app/embed/did:plc:abc123/app.bsky.feed.post/3kxyz"
    )


async def test_a_mastodon_instance_s_oembed_endpoint_is_discovered_from_the_post(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    url = f"{oembed.base}/@reporter/1101"
    entry = await publish_entry(client, media=[embed(url)])

    snapshot = entry["media"][0]["embed"]
    assert snapshot["provider"] == "mastodon" and snapshot["resolved"] is True
    assert snapshot["author_name"] == "reporter"
    assert snapshot["frame_url"] == f"{oembed.base}/@reporter/1101/embed"
    # The page first, then the endpoint its <link rel="alternate"> named.
    assert oembed.requests[0] == "/@reporter/1101"
    assert oembed.lookups("mastodon")[0]["url"] == [url]


async def test_mastodon_posts_on_instances_not_configured_stay_plain_links(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    entry = await publish_entry(client, media=[embed("https://unknown.example/@a/1")])

    assert "embed" not in entry["media"][0]
    assert oembed.requests == []


@pytest.mark.parametrize("mode", ["error", "garbage", "huge"])
async def test_a_provider_that_fails_leaves_a_plain_link_card_and_the_entry_publishes(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider, mode: str
) -> None:
    oembed.modes["youtube"] = mode  # type: ignore[assignment]
    entry = await publish_entry(client, headline="Polls close", media=[embed(VIDEO)])

    assert entry["status"] == "published"
    snapshot = entry["media"][0]["embed"]
    assert snapshot["resolved"] is False
    assert snapshot["title"] is None and snapshot["thumbnail"] is None
    assert snapshot["canonical_url"] == VIDEO
    # The player is known from the URL alone: the reader may still ask for it.
    assert snapshot["frame_url"] == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    [event] = await read_log(client, SLUG)
    assert event["type"] == "entry.created"
    card = parse(event["html"]).find(".//div[@data-embed]")
    assert card is not None
    [link] = [a for a in card.iter("a") if a.get("class") == "embed__link"]
    assert link.get("href") == VIDEO


async def test_a_slow_provider_costs_the_publish_its_time_limit_and_no_more(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    oembed.modes["youtube"] = "slow"
    started = time.monotonic()
    entry = await publish_entry(client, media=[embed(VIDEO)])
    took = time.monotonic() - started

    assert entry["media"][0]["embed"]["resolved"] is False
    assert 1.0 <= took < 3.0  # BULLETIN_EMBED_RESOLVE_SECONDS is 1 here


async def test_a_provider_s_scripts_handlers_and_javascript_urls_never_reach_the_page(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    oembed.modes["x"] = "hostile"
    entry = await publish_entry(client, media=[embed(POST)])

    snapshot = entry["media"][0]["embed"]
    assert snapshot["title"] == "Results night"
    assert snapshot["author_name"] == "Mallory"
    assert snapshot["author_url"] is None
    assert snapshot["canonical_url"] == POST
    assert snapshot["thumbnail"] is None
    assert snapshot["text"] == "Hello there"
    [event] = await read_log(client, SLUG)
    page = (await client.get(PAGE)).text
    for markup in (event["html"], page):
        assert "alert" not in markup
        assert "javascript:" not in markup
        assert "widgets.js" not in markup and "platform.example" not in markup
        document = parse(markup)
        for element in document.iter():
            if element.tag == "script":  # only the page's own: its client and its data
                assert element.get("type") == "application/ld+json" or (
                    element.get("src", "").startswith("/static/")
                ), element.attrib
            assert not any(name.startswith("on") for name in element.attrib)


async def test_the_card_is_static_on_the_page_and_in_the_event(
    client: httpx.AsyncClient, blog: dict
) -> None:
    entry = await publish_entry(client, media=[embed(VIDEO, caption="The count")])
    thumbnail = entry["media"][0]["embed"]["thumbnail"]
    [event] = await read_log(client, SLUG)
    page = (await client.get(PAGE)).text

    for markup in (event["html"], page):
        card = parse(markup).find(".//div[@data-embed]")
        assert card.get("data-embed-provider") == "youtube"
        assert card.get("data-embed-frame") == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
        # The frame only inert, in a template, from the allow-listed origin, sandboxed;
        # every image from our own renditions.
        assert card.find("./div/iframe") is None and card.find("./iframe") is None
        [frame] = card.findall("./template/iframe")
        assert frame.get("src") == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
        assert "allow-scripts" in frame.get("sandbox")
        [image] = card.iter("img")
        jpegs = [r for r in thumbnail["renditions"] if r["format"] == "jpeg"]
        assert image.get("src") == BASE + jpegs[-1]["url"]
        assert (image.get("width"), image.get("height")) == ("480", "360")
        text = "".join(card.itertext())
        assert "Polls close across the state" in text and "Newsroom TV" in text
        # The gate is shown by bulletin.js: without JavaScript, the card and the link.
        gate = card.find(".//div[@data-embed-gate]")
        assert gate.get("hidden") is not None
        assert gate.find(".//button").text == "Load content from YouTube"
    assert re.search(r"Always load YouTube", page)


async def test_an_edit_keeping_the_embed_does_not_look_it_up_again(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    entry = await publish_entry(client, headline="One", media=[embed(VIDEO)])
    oembed.modes["youtube"] = "error"  # would turn the card into a plain link
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}",
        json={"headline": "Two", "media": [embed(VIDEO, caption="Now captioned")]},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text

    item = response.json()["media"][0]
    assert item["caption"] == "Now captioned"
    assert item["embed"] == entry["media"][0]["embed"]
    assert len(oembed.lookups("youtube")) == 1


async def test_an_edit_to_a_new_embed_looks_it_up(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    entry = await publish_entry(client, headline="One", media=[embed(VIDEO)])
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"media": [embed(POST)]}, headers=ADMIN
    )

    assert response.json()["media"][0]["embed"]["provider"] == "x"
    assert len(oembed.lookups("x")) == 1


async def test_urls_of_no_known_provider_stay_plain_links_and_are_not_fetched(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    entry = await publish_entry(client, media=[embed("https://social.example/post/1")])

    assert entry["media"][0] == {
        "kind": "embed",
        "url": "https://social.example/post/1",
        "caption": "",
        "credit": "",
        "alt": "",
    }
    assert oembed.requests == []


async def test_nothing_is_looked_up_for_whoever_may_not_write(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    response = await client.post(ENTRIES, json={"media": [embed(VIDEO)]})

    assert response.status_code == 401
    assert oembed.requests == []


async def test_feeds_and_structured_data_carry_the_static_card_and_link(
    client: httpx.AsyncClient, blog: dict
) -> None:
    await publish_entry(client, headline="Polls close", media=[embed(VIDEO)])

    feed = (await client.get(f"{PAGE}/feed.json")).json()
    [item] = feed["items"]
    [attachment] = item["attachments"]
    assert attachment["url"] == VIDEO
    assert attachment["title"] == "Polls close across the state"
    assert attachment["_bulletin"]["provider"] == "youtube"
    assert "Polls close across the state" in item["content_html"]
    assert VIDEO.replace("&", "&amp;") in item["content_html"]
    assert "<iframe" not in item["content_html"] and "<script" not in item["content_html"]
    atom = (await client.get(f"{PAGE}/feed.atom")).text
    assert "Polls close across the state" in atom and "youtube-nocookie" not in atom

    page = parse((await client.get(PAGE)).text)
    [block] = [s for s in page.iter("script") if s.get("type") == "application/ld+json"]
    [update] = json.loads(block.text)["liveBlogUpdate"]
    [shared] = update["sharedContent"]
    assert shared["@type"] == "VideoObject"
    assert shared["url"] == VIDEO
    assert shared["name"] == "Polls close across the state"
    assert shared["author"]["name"] == "Newsroom TV"
    assert shared["thumbnailUrl"].startswith(f"{BASE}/media/")


async def test_the_page_may_frame_only_the_allow_listed_origins(
    client: httpx.AsyncClient, blog: dict, oembed: OembedProvider
) -> None:
    response = await client.get(PAGE)
    header = response.headers["content-security-policy"]
    [frame_src] = [d.split()[1:] for d in header.split(";") if d.split()[0] == "frame-src"]
    assert frame_src[0] == "'self'"
    assert "https://www.youtube-nocookie.com" in frame_src
    assert "https://www.youtube.com" not in frame_src
    assert oembed.base in frame_src  # a configured Mastodon instance
    assert all(source.startswith(("https://", "'self'", oembed.base)) for source in frame_src)


async def test_an_unknown_provider_in_the_endpoint_setting_is_refused_at_start() -> None:
    from app.embeds.providers import Providers

    with pytest.raises(ValueError, match="myspace"):
        Providers({"myspace": "https://myspace.example/oembed"})


async def test_without_private_targets_allowed_a_provider_on_loopback_is_never_asked(
    settings: Settings, blog: dict, oembed: OembedProvider
) -> None:
    # The same checks as webhooks' (app/outgoing.py): the endpoint here is on 127.0.0.1.
    strict = settings.model_copy(update={"embed_allow_private_targets": False})
    async with running_app(strict) as app, asgi_client(app) as client:
        entry = await publish_entry(client, media=[embed(VIDEO)])

    assert entry["media"][0]["embed"]["resolved"] is False
    assert oembed.requests == []


async def test_a_thumbnail_on_a_private_address_is_refused_even_from_a_public_answer() -> None:
    from app.outgoing import FetchFailed, fetch, outgoing_client

    async with outgoing_client(httpx.Timeout(2), "test", None) as client:
        for url in (
            "http://127.0.0.1:9/t.jpg",
            "http://[::ffff:10.0.0.1]/t.jpg",
            "file:///etc/passwd",
        ):
            with pytest.raises(FetchFailed, match="refused"):
                await fetch(client, url, allow_private=False, max_bytes=1000)
