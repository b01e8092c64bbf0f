"""The reader page, the embed fragment and the newsroom page, as HTML without JavaScript."""

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import html5lib
import httpx
import rjsmin

from app.config import Settings
from app.main import create_app
from app.pages import ENTRIES_KEPT, KEY_EVENTS_SHOWN
from tests.support.clients import asgi_client
from tests.support.factories import ADMIN, ADMIN_TOKEN, create_blog, read_log
from tests.support.servers import running_app

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
PAGE = "/blogs/vote-night"
ENTRIES = "/api/v1/blogs/vote-night/entries"
START = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


async def post(client: httpx.AsyncClient, headers: dict[str, str], **fields) -> dict:
    response = await client.post(ENTRIES, json={"body": "<p>Update</p>", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def parse_strictly(html: str) -> None:
    """Raises on any HTML parse error: the page is valid HTML."""
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)


def article_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article class="[^"]*" id="entry-(\d+)"', html)]


async def test_the_page_shows_the_blog_complete_without_javascript(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await client.patch(
        "/api/v1/blogs/vote-night",
        json={"summary": "<p>Results as they come in.</p>", "topics": ["Elections", "Counts"]},
        headers=ADMIN,
    )
    first = await post(
        client,
        publish_headers,
        headline="Polls close in the east",
        body="<blockquote><p>“Every vote counts.”</p></blockquote>",
        authors=[{"name": "Ada Reyes", "role": "Political editor"}, {"name": "Lee Park"}],
        media=[
            {
                "kind": "image",
                "url": "https://images.example.org/count.jpg",
                "caption": "Ballot boxes arrive",
                "credit": "Photo: Lee Park",
                "alt": "Volunteers carry ballot boxes",
            }
        ],
        key_event=True,
        published_at="2026-03-04T12:46:00Z",
    )
    pinned = await post(
        client,
        publish_headers,
        headline="How to read the results",
        pinned=True,
        published_at="2026-03-04T12:00:00Z",
    )
    latest = await post(client, publish_headers, headline="Turnout is up")

    response = await client.get(PAGE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    parse_strictly(html)
    assert "<title>Vote night</title>" in html
    assert "Results as they come in." in html
    assert 'data-bulletin-status="live"' in html
    # The pinned entry leads, then the others newest first; each entry appears once.
    assert article_ids(html) == [pinned["id"], latest["id"], first["id"]]
    assert (
        '<time datetime="2026-03-04T12:46:00Z" title="Wednesday, March 4, 2026, 7:46\u202fAM EST">'
        "7:46\u202fAM</time>" in html
    )
    assert "“Every vote counts.”" in html
    assert "Ballot boxes arrive" in html and "Photo: Lee Park" in html
    assert 'alt="Volunteers carry ballot boxes"' in html
    assert "Ada Reyes" in html and "Political editor" in html and "Lee Park</span>" in html
    key_events = html[html.index("data-bulletin-key-events") : html.index("</ol>")]
    # Key events link to permalinks (bulletin.js scrolls when the entry is on the page).
    assert f'href="http://127.0.0.1:8000/blogs/vote-night/entries/{first["id"]}"' in key_events
    assert "Polls close in the east" in key_events
    assert "Related topics" in html and "<li>Elections</li>" in html
    # The client resumes from the head the page was rendered with.
    assert f'data-bulletin-seq="{(await read_log(client, "vote-night"))[-1]["seq"]}"' in html
    assert 'aria-live="polite"' in html


async def test_the_page_describes_itself_to_search_engines_and_link_previews(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await post(
        client,
        publish_headers,
        headline="A </script> in a headline stays text",
        media=[{"kind": "image", "url": "https://images.example.org/a.jpg", "alt": "A count"}],
        authors=[{"name": "Ada Reyes"}],
    )
    html = (await client.get(PAGE)).text
    [raw] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    data = json.loads(raw)
    assert data["@type"] == "LiveBlogPosting"
    assert data["headline"] == "Vote night"
    assert data["coverageStartTime"].endswith("Z")
    [update] = data["liveBlogUpdate"]
    assert update["@type"] == "BlogPosting"
    assert update["headline"] == "A </script> in a headline stays text"
    assert update["url"].endswith(f"/blogs/vote-night/entries/{entry['id']}")
    assert update["author"] == [{"@type": "Person", "name": "Ada Reyes"}]
    assert update["image"] == ["https://images.example.org/a.jpg"]
    assert '<meta property="og:title" content="Vote night">' in html
    assert '<meta property="og:image" content="https://images.example.org/a.jpg">' in html
    assert 'rel="alternate" type="application/atom+xml"' in html
    assert 'rel="alternate" type="application/feed+json"' in html


async def test_an_ended_blog_says_so_and_carries_its_coverage_end(
    client: httpx.AsyncClient, blog: dict
) -> None:
    await client.patch("/api/v1/blogs/vote-night", json={"status": "ended"}, headers=ADMIN)
    html = (await client.get(PAGE)).text
    assert 'data-bulletin-status="ended"' in html
    assert "Coverage ended" in html
    assert '"coverageEndTime"' in html


async def test_older_entries_are_a_link_away_and_each_appears_on_one_page_only(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    ids = [
        (
            await post(
                client, publish_headers, published_at=(START + timedelta(minutes=i)).isoformat()
            )
        )["id"]
        for i in range(25)
    ]
    first_page = (await client.get(PAGE)).text
    assert article_ids(first_page) == ids[::-1][:20]
    [older] = re.findall(r'href="([^"]+)" data-bulletin-older>', first_page)
    assert "?before=" in older
    second_page = (await client.get(older.replace("http://127.0.0.1:8000", ""))).text
    parse_strictly(second_page)
    assert article_ids(second_page) == ids[::-1][20:]
    # An archive page links back to the latest and is not kept live.
    assert "Back to the latest updates" in second_page
    assert "data-bulletin-archive" in second_page
    assert "hidden>Older updates" in second_page


async def test_a_continued_blog_links_to_the_previous_coverage(
    client: httpx.AsyncClient, blog: dict
) -> None:
    response = await client.post(
        "/api/v1/blogs",
        json={"slug": "vote-night-day-two", "title": "Day two", "previous_slug": "vote-night"},
        headers=ADMIN,
    )
    assert response.status_code == 201
    html = (await client.get("/blogs/vote-night-day-two")).text
    assert 'For previous coverage, see <a href="http://127.0.0.1:8000/blogs/vote-night">' in html
    assert "No updates yet." in html


async def test_the_page_renders_each_entry_exactly_as_its_live_event_does(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await post(client, publish_headers, headline="One template", key_event=True)
    [event] = await read_log(client, "vote-night")
    html = (await client.get(PAGE)).text
    # But for its day divider, which the page shows before the first entry of each day.
    assert event["html"].replace("data-bulletin-day hidden", "data-bulletin-day") in html
    assert f'id="entry-{entry["id"]}"' in event["html"]


async def test_the_page_lists_each_key_event_exactly_as_its_live_event_does(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headline = await post(client, publish_headers, headline="Polls close", key_event=True)
    long_body = "<p>" + "A result that takes many words to tell. " * 5 + "</p>"
    body_only = await post(client, publish_headers, body=long_body, key_event=True)
    await post(client, publish_headers, headline="Not a key event")
    unmarked = await client.patch(
        f"{ENTRIES}/{headline['id']}", json={"key_event": False}, headers=publish_headers
    )
    assert unmarked.status_code == 200
    with_headline, body_only_event, plain, unmarked_event = await read_log(client, "vote-night")

    # The line the client puts in the list is the one the page renders, cut the same way.
    html = (await client.get(PAGE)).text
    line = body_only_event["key_event_html"]
    assert line in html
    assert f'href="http://127.0.0.1:8000/blogs/vote-night/entries/{body_only["id"]}"' in line
    assert "A result that takes many words to tell." in line and "...</span>" in line
    assert "Polls close</span>" in with_headline["key_event_html"]
    # No line for an entry that is not (or no longer) a key event: the client removes it.
    assert "key_event_html" not in plain
    assert "key_event_html" not in unmarked_event


async def test_the_page_hands_the_client_the_caps_the_server_keeps_to(
    client: httpx.AsyncClient, blog: dict
) -> None:
    for path in (PAGE, f"{PAGE}/embed"):
        html = (await client.get(path)).text
        assert f'data-bulletin-max-entries="{ENTRIES_KEPT}"' in html
        assert f'data-bulletin-max-key-events="{KEY_EVENTS_SHOWN}"' in html
        assert 'data-bulletin-heartbeat="' in html


async def test_an_unknown_blog_or_a_broken_page_link_gets_an_html_error(
    client: httpx.AsyncClient, blog: dict
) -> None:
    missing = await client.get("/blogs/no-such-blog")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "There is no such live blog." in missing.text
    broken = await client.get(f"{PAGE}?before=not-a-cursor")
    assert broken.status_code == 400
    assert "That page link is not valid." in broken.text


async def test_the_embed_fragment_can_be_read_from_another_origin(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await post(client, publish_headers, headline="Embedded")
    response = await client.get(
        "/blogs/vote-night/embed", headers={"Origin": "https://partner.example"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert f'id="entry-{entry["id"]}"' in response.text
    assert 'data-bulletin-seq="1"' in response.text
    assert "<html" not in response.text


async def test_the_newsroom_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/newsroom")
    assert response.status_code == 200
    parse_strictly(response.text)
    assert "/static/newsroom.js" in response.text
    assert response.headers["cache-control"] == "no-store"


def test_the_client_stays_within_five_kilobytes_minified_and_gzipped() -> None:
    source = (STATIC / "bulletin.js").read_text()
    size = len(gzip.compress(rjsmin.jsmin(source).encode(), compresslevel=9))
    assert size <= 5 * 1024, f"bulletin.js is {size} bytes minified and gzipped"


async def test_only_the_configured_origins_may_read_from_other_sites(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_origins": ["https://partner.example"]}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bulletin.test") as c:
            allowed = await c.get("/api/v1/blogs", headers={"Origin": "https://partner.example"})
            other = await c.get("/api/v1/blogs", headers={"Origin": "https://elsewhere.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://partner.example"
    assert "access-control-allow-origin" not in other.headers


async def test_the_page_is_cacheable_and_revalidated_by_the_blogs_head(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await post(client, publish_headers, headline="First")
    first = await client.get(PAGE)
    assert first.headers["cache-control"].startswith("public, max-age=")
    etag = first.headers["etag"]
    again = await client.get(PAGE, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""

    await post(client, publish_headers, headline="Second")
    changed = await client.get(PAGE, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert "Second" in changed.text
    head = await client.head(PAGE)
    assert head.status_code == 200
    assert head.headers["etag"] == changed.headers["etag"]
    # Another page of the same blog is another variant with its own validator.
    embed = await client.get("/blogs/vote-night/embed")
    assert embed.headers["etag"] not in {etag, changed.headers["etag"]}


async def test_structured_data_carries_the_text_of_entries_not_their_markup(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await post(
        client, publish_headers, body="<p>Fish &amp; chips</p><ul><li>one</li><li>two</li></ul>"
    )
    html = (await client.get(PAGE)).text
    [raw] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    [update] = json.loads(raw)["liveBlogUpdate"]
    assert update["articleBody"] == "Fish & chips one two"


async def test_a_photo_stored_as_a_path_on_this_server_is_shown_under_the_public_address(
    database_url: str,
) -> None:
    # Bulletin's own files are stored as paths: moving the server to another address (or
    # port) moves every photo with it, in the page, the live update, the feeds and the JSON.
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        public_base_url="https://live.example.org",
    )
    photo = {"kind": "image", "url": "/static/demo/harbour.svg", "alt": "A harbour"}
    async with running_app(settings) as app, asgi_client(app) as client:
        await create_blog(client)
        entry = await post(client, ADMIN, media=[photo])
        page = (await client.get(PAGE)).text
        event = (await read_log(client, "vote-night"))[-1]
        feed = (await client.get(f"{PAGE}/feed.json")).json()
        atom = (await client.get(f"{PAGE}/feed.atom")).text

    shown = "https://live.example.org/static/demo/harbour.svg"
    assert entry["media"][0]["url"] == "/static/demo/harbour.svg"  # stored and answered as a path
    assert f'<img src="{shown}"' in page
    assert f'<meta property="og:image" content="{shown}">' in page
    assert json.loads(re.search(r'application/ld\+json">(.*?)</script>', page, re.S).group(1))[
        "liveBlogUpdate"
    ][0]["image"] == [shown]
    assert f'<img src="{shown}"' in event["html"]
    assert feed["items"][0]["attachments"][0]["url"] == shown
    assert f'href="{shown}"' in atom
