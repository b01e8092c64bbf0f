"""The reader page's views without JavaScript (oldest first, one tag's entries, with counts
per tag), the live card fragment, and the public "N reading now" of a blog that shows it."""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.asyncio.client import connect

from app.pages import CARD_ENTRIES, PAGE_SIZE, READING_NOW_CACHE_CONTROL, rounded_readers
from tests.support.factories import ADMIN, create_blog, publish_entry
from tests.support.servers import live_server, served_settings
from tests.support.waiting import eventually
from tests.test_pages import parse_strictly

PAGE = "/blogs/vote-night"
ENTRIES = "/api/v1/blogs/vote-night/entries"
START = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def article_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article class="[^"]*" id="entry-(\d+)"', html)]


def link_of(html: str, css_class: str) -> str | None:
    """The href of the element with this class, unescaped; None if it is hidden."""
    match = re.search(rf'<a class="{css_class}" href="([^"]*)"[^>]*>', html)
    assert match is not None
    return None if " hidden" in match[0] else match[1].replace("&amp;", "&")


async def publish_at(client: httpx.AsyncClient, minute: int, **fields: object) -> dict:
    moment = (START + timedelta(minutes=minute)).isoformat()
    return await publish_entry(client, published_at=moment, **fields)


async def test_oldest_first_is_a_page_of_its_own_paged_forward_with_later_updates(
    client: httpx.AsyncClient, blog: dict
) -> None:
    ids = [(await publish_at(client, n, body=f"<p>Answer {n}</p>"))["id"] for n in range(25)]
    first = await client.get(f"{PAGE}?order=oldest")
    assert first.status_code == 200
    parse_strictly(first.text)
    assert article_ids(first.text) == ids[:PAGE_SIZE]
    assert 'data-bulletin-order="oldest"' in first.text
    assert "data-bulletin-archive" not in first.text  # live: new entries join the end
    assert '<span aria-current="true">Oldest first</span>' in first.text
    assert 'href="http://127.0.0.1:8000/blogs/vote-night">Newest first</a>' in first.text
    later = link_of(first.text, "older")
    assert later is not None and later.startswith(
        f"http://127.0.0.1:8000{PAGE}?order=oldest&after="
    )
    assert ">Later updates</a>" in first.text

    rest = await client.get(later.removeprefix("http://127.0.0.1:8000"))
    assert article_ids(rest.text) == ids[PAGE_SIZE:]
    assert link_of(rest.text, "older") is None
    assert "Back to the first updates" in rest.text

    newest = await client.get(PAGE)
    assert article_ids(newest.text) == ids[::-1][:PAGE_SIZE]
    assert first.headers["etag"] != newest.headers["etag"] != rest.headers["etag"]
    again = await client.get(
        f"{PAGE}?order=oldest", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304


async def test_a_tag_shows_its_entries_only_with_counts_per_tag_in_the_filter_bar(
    client: httpx.AsyncClient, blog: dict
) -> None:
    court = [
        (await publish_at(client, n, headline=f"Ruling {n}", tags=["courts"]))["id"]
        for n in range(3)
    ]
    both = await publish_at(client, 5, headline="Count in court", tags=["courts", "count"])
    weather = await publish_at(client, 6, headline="Rain", tags=["weather"])
    await publish_at(client, 7, headline="Untagged")

    page = await client.get(PAGE)
    parse_strictly(page.text)
    counts = dict(
        re.findall(r'\?tag=([a-z]+)">[a-z]+ <span class="view__count">(\d+)</span>', page.text)
    )
    assert counts == {"courts": "4", "count": "1", "weather": "1"}
    assert 'aria-current="page">All <span class="view__count">6</span>' in page.text

    filtered = await client.get(f"{PAGE}?tag=Courts")
    parse_strictly(filtered.text)
    assert article_ids(filtered.text) == [both["id"], *court[::-1]]
    assert 'data-bulletin-tag="courts"' in filtered.text
    assert '?tag=courts" aria-current="page">courts' in filtered.text
    assert "Updates tagged <strong>courts</strong>" in filtered.text
    # The order toggle keeps the tag.
    assert (
        'href="http://127.0.0.1:8000/blogs/vote-night?order=oldest&amp;tag=courts">Oldest first'
        in filtered.text
    )
    oldest = await client.get(f"{PAGE}?order=oldest&tag=courts")
    assert article_ids(oldest.text) == [*court, both["id"]]

    assert filtered.headers["etag"] != page.headers["etag"]
    again = await client.get(
        f"{PAGE}?tag=Courts", headers={"If-None-Match": filtered.headers["etag"]}
    )
    assert again.status_code == 304

    # An edit out of the tag takes the entry off that view.
    await client.patch(f"{ENTRIES}/{weather['id']}", json={"tags": []}, headers=ADMIN)
    empty = await client.get(f"{PAGE}?tag=weather")
    assert article_ids(empty.text) == []
    assert "No updates with this tag yet." in empty.text


async def test_the_filter_bars_counts_follow_new_edited_and_deleted_entries(
    client: httpx.AsyncClient, blog: dict
) -> None:
    def counted(answer: httpx.Response) -> tuple[int, dict[str, int]]:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        return body["total"], {item["tag"]: item["count"] for item in body["tags"]}

    ruling = await publish_at(client, 0, headline="Ruling", tags=["courts"])
    await publish_at(client, 1, headline="Rain", tags=["weather"])
    first = await client.get(f"{PAGE}/tags")
    assert counted(first) == (2, {"courts": 1, "weather": 1})
    assert first.json()["seq"] == (await client.get(f"{PAGE}/tags")).json()["seq"]
    # One answer for every reader, revalidated by the blog's head.
    again = await client.get(f"{PAGE}/tags", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304

    appeal = await publish_at(client, 2, headline="Appeal", tags=["courts", "results"])
    assert counted(await client.get(f"{PAGE}/tags")) == (
        3,
        {"courts": 2, "weather": 1, "results": 1},
    )
    await client.patch(f"{ENTRIES}/{ruling['id']}", json={"tags": ["weather"]}, headers=ADMIN)
    assert counted(await client.get(f"{PAGE}/tags")) == (
        3,
        {"courts": 1, "weather": 2, "results": 1},
    )
    assert (await client.delete(f"{ENTRIES}/{appeal['id']}", headers=ADMIN)).status_code == 204
    latest = await client.get(f"{PAGE}/tags")
    assert counted(latest) == (2, {"weather": 2})
    assert latest.json()["seq"] > first.json()["seq"]


async def test_the_counts_of_a_blog_that_does_not_exist_are_a_json_404(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/blogs/no-such-blog/tags")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def test_pages_of_a_tag_follow_older_updates_within_the_tag(
    client: httpx.AsyncClient, blog: dict
) -> None:
    tagged = [
        (await publish_at(client, n, body="<p>Q</p>", tags=["qa"]))["id"]
        for n in range(PAGE_SIZE + 3)
    ]
    await publish_at(client, 100, body="<p>Other</p>")
    first = await client.get(f"{PAGE}?tag=qa")
    older = link_of(first.text, "older")
    assert older is not None and "tag=qa" in older and "before=" in older
    second = await client.get(older.removeprefix("http://127.0.0.1:8000"))
    assert article_ids(first.text) + article_ids(second.text) == tagged[::-1]


@pytest.mark.parametrize(
    "query",
    [
        "?tag=not_a;tag",
        "?tag=" + "x" * 31,
        "?order=sideways",
        "?order=oldest&before=1_1",
        "?after=1_1",
    ],
)
async def test_a_view_no_link_of_ours_makes_is_a_400_page(
    client: httpx.AsyncClient, blog: dict, query: str
) -> None:
    response = await client.get(PAGE + query)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"


async def test_the_card_holds_the_newest_five_headlines_linking_to_their_permalinks(
    client: httpx.AsyncClient, blog: dict
) -> None:
    entries = [await publish_at(client, n, headline=f"Headline {n}") for n in range(7)]
    await publish_at(client, 8, body="<p>A body only, shown by its first words</p>")
    response = await client.get(f"{PAGE}/card")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"].startswith("public, max-age=")
    parse_strictly(f"<!doctype html><title>card</title>{response.text}")
    lines = re.findall(
        r'<li data-entry-id="(\d+)"[^>]*><a href="([^"]+)"><time datetime="([^"]+)" title=',
        response.text,
    )
    assert len(lines) == CARD_ENTRIES
    newest = entries[::-1][: CARD_ENTRIES - 1]
    assert [int(i) for i, _, _ in lines[1:]] == [e["id"] for e in newest]
    assert [href for _, href, _ in lines[1:]] == [
        f"http://127.0.0.1:8000/blogs/vote-night/entries/{e['id']}" for e in newest
    ]
    assert "<span>A body only, shown by its first words</span>" in response.text
    assert (
        "data-bulletin-card" in response.text
        and 'data-bulletin-max-key-events="5"' in response.text
    )

    again = await client.get(f"{PAGE}/card", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    page = await client.get(PAGE)
    assert page.headers["etag"] != response.headers["etag"]
    await publish_at(client, 9, headline="Newest of all")
    moved = await client.get(f"{PAGE}/card", headers={"If-None-Match": response.headers["etag"]})
    assert moved.status_code == 200 and "Newest of all" in moved.text

    missing = await client.get("/blogs/no-such-blog/card")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")


def test_readers_are_told_a_rounded_count_and_nothing_below_ten() -> None:
    assert [rounded_readers(n) for n in (0, 9, 10, 14, 15, 99, 104, 1234, 41250, 995)] == [
        None,
        None,
        10,
        14,
        15,
        99,
        100,
        1200,
        41000,
        1000,
    ]


async def test_reading_now_is_public_only_for_a_blog_that_shows_it(
    client: httpx.AsyncClient, blog: dict
) -> None:
    hidden = await client.get(f"{PAGE}/reading-now")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert "data-bulletin-reading" not in (await client.get(PAGE)).text

    changed = await client.patch(
        "/api/v1/blogs/vote-night", json={"show_readers_count": True}, headers=ADMIN
    )
    assert changed.status_code == 200 and changed.json()["show_readers_count"] is True
    shown = await client.get(f"{PAGE}/reading-now")
    assert shown.status_code == 200
    assert shown.json() == {"reading_now": None}  # nobody streaming: nothing to say
    assert shown.headers["cache-control"] == READING_NOW_CACHE_CONTROL
    assert 'data-bulletin-reading="/blogs/vote-night/reading-now"' in (await client.get(PAGE)).text


async def test_reading_now_counts_the_open_streams_of_a_served_blog(database_url: str) -> None:
    settings = served_settings(database_url, readers_report_seconds=0.2)
    async with live_server(settings) as server:
        await create_blog(server.client, "vote-night", show_readers_count=True)
        sockets = [await connect(f"{server.ws}/api/v1/blogs/vote-night/ws") for _ in range(12)]
        try:
            for socket in sockets:
                assert json.loads(await socket.recv())["type"] == "hello"

            async def reading() -> object:
                return (await server.client.get(f"{PAGE}/reading-now")).json()["reading_now"]

            await eventually(reading, 10, "12 reading now", holds=lambda n: n == 12)
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
