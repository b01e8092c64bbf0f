"""An entry's permalink, /blogs/{slug}/entries/{id}: the page of the blog that holds the
entry, with the entry's own title and card, linked from every surface; 410 once deleted."""

import json
import re
from datetime import UTC, datetime, timedelta

import httpx

from app.pages import PAGE_SIZE
from tests.support.factories import ADMIN, read_log
from tests.test_pages import article_ids, parse_strictly, post

BASE = "http://127.0.0.1:8000"
ENTRIES = "/api/v1/blogs/vote-night/entries"
START = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def permalink(entry: dict) -> str:
    return f"/blogs/vote-night/entries/{entry['id']}"


def meta(html: str, prop: str) -> str:
    match = re.search(rf'<meta (?:property|name)="{re.escape(prop)}" content="([^"]*)">', html)
    assert match, f"no {prop}"
    return match[1]


async def test_a_permalink_shows_the_live_page_with_the_entrys_own_title_and_card(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    older = await post(client, publish_headers, headline="Polls open")
    entry = await post(
        client,
        publish_headers,
        headline="Turnout passes 60% <at noon>",
        body="<p>Officials report record turnout in the north.</p>",
        media=[{"kind": "image", "url": "https://images.example.org/queue.jpg", "alt": "A queue"}],
    )
    response = await client.get(permalink(entry))
    assert response.status_code == 200
    html = response.text
    parse_strictly(html)
    assert "<title>Turnout passes 60% &lt;at noon&gt; - Vote night</title>" in html
    assert f'<link rel="canonical" href="{BASE}{permalink(entry)}">' in html
    assert meta(html, "og:url") == f"{BASE}{permalink(entry)}"
    assert meta(html, "og:title") == "Turnout passes 60% &lt;at noon&gt;"
    assert meta(html, "og:description") == "Officials report record turnout in the north."
    assert meta(html, "og:image") == "https://images.example.org/queue.jpg"
    # The blog's latest page, live (no archive marker), told which entry to show.
    assert article_ids(html) == [entry["id"], older["id"]]
    assert "data-bulletin-archive" not in html
    assert f'data-bulletin-focus="{entry["id"]}"' in html
    assert "/static/reader.js" in html
    # Its feeds and "latest" links are the blog's, not the entry's.
    assert f'href="{BASE}/blogs/vote-night/feed.atom"' in html


async def test_an_entry_past_the_first_page_gets_the_older_page_that_holds_it(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entries = [
        await post(
            client,
            publish_headers,
            headline=f"Update {n}",
            published_at=(START + timedelta(minutes=n)).isoformat(),
        )
        for n in range(PAGE_SIZE + 3)
    ]
    old = entries[1]
    html = (await client.get(permalink(old))).text
    ids = article_ids(html)
    assert ids[0] == old["id"] and ids == [e["id"] for e in reversed(entries[:2])]
    assert "data-bulletin-archive" in html and "Back to the latest updates" in html
    # Its link on every surface is the permalink.
    page = (await client.get("/blogs/vote-night")).text
    assert f'href="{BASE}{permalink(entries[-1])}"' in page
    feed = (await client.get("/blogs/vote-night/feed.json")).json()
    assert feed["items"][0]["url"] == f"{BASE}{permalink(entries[-1])}"
    atom = (await client.get("/blogs/vote-night/feed.atom")).text
    assert f'<link rel="alternate" type="text/html" href="{BASE}{permalink(entries[-1])}"/>' in atom
    [ld] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    updates = json.loads(ld)["liveBlogUpdate"]
    assert updates[0]["url"] == f"{BASE}{permalink(entries[-1])}"
    [created] = [e for e in await read_log(client, "vote-night") if e["entry"]["id"] == old["id"]]
    assert f'href="{BASE}{permalink(old)}"' in created["html"]
    assert f'data-bulletin-share="{BASE}{permalink(old)}"' in created["html"]


async def test_a_deleted_entrys_permalink_is_410_with_a_link_to_the_blog(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await post(client, publish_headers, headline="Wrong figure")
    deleted = await client.delete(f"{ENTRIES}/{entry['id']}", headers=publish_headers)
    assert deleted.status_code == 204
    response = await client.get(permalink(entry))
    assert response.status_code == 410
    assert response.headers["content-type"].startswith("text/html")
    parse_strictly(response.text)
    assert f'<a href="{BASE}/blogs/vote-night">Read the latest updates</a>' in response.text
    assert "Wrong figure" not in response.text


async def test_drafts_unknown_and_malformed_entries_are_404_and_say_nothing(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    draft = await post(client, publish_headers, headline="Not yet", status="draft")
    await client.delete(f"{ENTRIES}/{draft['id']}", headers=publish_headers)
    secret = await post(client, publish_headers, headline="Still secret", status="draft")
    for path in (
        permalink(draft),  # deleted before it was ever public: never existed for readers
        permalink(secret),
        "/blogs/vote-night/entries/99999",
        "/blogs/vote-night/entries/1x",
        "/blogs/vote-night/entries/٣",
        "/blogs/no-such-blog/entries/1",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Still secret" not in response.text and "Not yet" not in response.text


async def test_a_permalink_is_cached_and_revalidated_like_the_page(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await post(client, publish_headers, headline="Cached")
    first = await client.get(permalink(entry))
    assert first.headers["cache-control"].startswith("public, max-age=")
    etag = first.headers["etag"]
    assert etag != (await client.get("/blogs/vote-night")).headers["etag"]
    again = await client.get(permalink(entry), headers={"If-None-Match": etag})
    assert again.status_code == 304
    head = await client.head(permalink(entry))
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"headline": "Cached, then edited"}, headers=ADMIN
    )
    edited = await client.get(permalink(entry), headers={"If-None-Match": etag})
    assert edited.status_code == 200 and "Cached, then edited" in edited.text
