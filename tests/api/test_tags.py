"""Tags on entries through the API: normalised and validated, kept in revisions and events,
and a filter (and an oldest-first order) for the list of entries, each with its own ETag."""

from datetime import UTC, datetime, timedelta

import feedparser
import httpx
import pytest

from tests.support.errors import UNCHECKED, assert_error
from tests.support.factories import ADMIN, publish_entry, read_log

ENTRIES = "/api/v1/blogs/vote-night/entries"
START = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


async def publish_at(
    client: httpx.AsyncClient, headers: dict[str, str], minute: int, **fields: object
) -> dict:
    moment = (START + timedelta(minutes=minute)).isoformat()
    return await publish_entry(client, headers=headers, published_at=moment, **fields)


async def test_tags_are_stored_normalised_and_carried_by_the_entry_and_its_event(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(
        client,
        headers=publish_headers,
        headline="Court rules on the count",
        tags=["Supreme Court", "supreme-court", "Recount", "الانتخابات"],
    )
    assert entry["tags"] == ["supreme-court", "recount", "الانتخابات"]
    assert (await client.get(f"{ENTRIES}/{entry['id']}")).json()["tags"] == entry["tags"]
    [event] = await read_log(client, "vote-night")
    assert event["entry"]["tags"] == entry["tags"]
    assert 'href="http://127.0.0.1:8000/blogs/vote-night?tag=recount"' in event["html"]
    # The card's line: headline and time, linking to the permalink.
    assert (
        f'href="http://127.0.0.1:8000/blogs/vote-night/entries/{entry["id"]}"'
        in (event["headline_html"])
    )
    untagged = await publish_entry(client, headers=publish_headers, headline="No tags")
    assert "tags" not in untagged


@pytest.mark.parametrize(
    "tags",
    [
        ["ok", ""],
        ["  padded"],
        ["two  spaces"],
        ["under_score"],
        ["semi;colon"],
        ["x" * 31],
        [f"tag{n}" for n in range(11)],
        "not-a-list",
        [7],
    ],
)
async def test_a_bad_tag_is_refused_with_422_and_nothing_is_written(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str], tags: object
) -> None:
    refused = await client.post(
        ENTRIES, json={"headline": "Tagged badly", "tags": tags}, headers=publish_headers
    )
    assert_error(refused, 422, "invalid_input", UNCHECKED)
    assert (await client.get(ENTRIES)).json()["items"] == []
    assert await read_log(client, "vote-night") == []

    entry = await publish_entry(client, headers=publish_headers, headline="Fine", tags=["ok"])
    edit = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"tags": tags}, headers=publish_headers
    )
    assert_error(edit, 422, "invalid_input", UNCHECKED)
    assert (await client.get(f"{ENTRIES}/{entry['id']}")).json()["version"] == 1
    assert len(await read_log(client, "vote-night")) == 1


async def test_the_tag_filter_pages_through_that_tag_only_with_its_own_etag(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    tagged = [
        (await publish_at(client, publish_headers, n, body="<p>Court</p>", tags=["courts"]))["id"]
        for n in range(5)
    ]
    other = await publish_at(client, publish_headers, 10, body="<p>Weather</p>", tags=["rain"])
    seen, cursor = [], None
    while True:
        query = "?tag=Courts&limit=2" + (f"&before={cursor}" if cursor else "")
        page = (await client.get(ENTRIES + query)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == tagged[::-1]

    filtered = await client.get(f"{ENTRIES}?tag=courts")
    everything = await client.get(ENTRIES)
    assert filtered.headers["etag"] != everything.headers["etag"]
    again = await client.get(
        f"{ENTRIES}?tag=courts", headers={"If-None-Match": filtered.headers["etag"]}
    )
    assert again.status_code == 304
    assert everything.json()["items"][0]["id"] == other["id"]
    none = (await client.get(f"{ENTRIES}?tag=elsewhere")).json()
    assert none == {"items": [], "next_cursor": None}

    # Any change moves every variant on: the copy held is no longer current.
    await client.patch(
        f"{ENTRIES}/{other['id']}", json={"tags": ["courts"]}, headers=publish_headers
    )
    stale = await client.get(
        f"{ENTRIES}?tag=courts", headers={"If-None-Match": filtered.headers["etag"]}
    )
    assert stale.status_code == 200
    assert stale.json()["items"][0]["id"] == other["id"]


async def test_an_entry_edited_out_of_a_tag_leaves_its_filter_and_a_restore_brings_it_back(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(
        client, headers=publish_headers, headline="Turnout", tags=["turnout"]
    )
    url = f"{ENTRIES}/{entry['id']}"
    edited = await client.patch(url, json={"tags": []}, headers=publish_headers)
    assert edited.status_code == 200, edited.text
    assert "tags" not in edited.json()
    assert (await client.get(f"{ENTRIES}?tag=turnout")).json()["items"] == []
    last = (await read_log(client, "vote-night"))[-1]
    assert last["type"] == "entry.updated" and "tags" not in last["entry"]

    revisions = (await client.get(f"{url}/revisions", headers=ADMIN)).json()["items"]
    assert [r["tags"] for r in revisions] == [[], ["turnout"]]
    restored = await client.post(f"{url}/revisions/1/restore", headers=ADMIN)
    assert restored.status_code == 200, restored.text
    assert restored.json()["tags"] == ["turnout"]
    assert [e["id"] for e in (await client.get(f"{ENTRIES}?tag=turnout")).json()["items"]] == [
        entry["id"]
    ]


async def test_oldest_first_pages_forward_with_the_same_cursor_parameter(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    ids = [(await publish_at(client, publish_headers, n, body="<p>Q</p>"))["id"] for n in range(5)]
    seen, cursor = [], None
    while True:
        query = "?order=oldest&limit=2" + (f"&before={cursor}" if cursor else "")
        page = (await client.get(ENTRIES + query)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    oldest = await client.get(f"{ENTRIES}?order=oldest")
    newest = await client.get(ENTRIES)
    assert oldest.headers["etag"] != newest.headers["etag"]
    current = await client.get(
        f"{ENTRIES}?order=oldest", headers={"If-None-Match": oldest.headers["etag"]}
    )
    assert current.status_code == 304

    for refused in ("order=sideways", "tag=no_such;tag", "tag=" + "x" * 31):
        assert_error(await client.get(f"{ENTRIES}?{refused}"), 422, "invalid_input", UNCHECKED)


async def test_both_feeds_carry_the_tags(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await publish_entry(
        client,
        headers=publish_headers,
        headline="Result",
        key_event=True,
        tags=["results", "wales"],
    )
    atom = feedparser.parse((await client.get("/blogs/vote-night/feed.atom")).content)
    assert [tag.term for tag in atom.entries[0].tags] == ["key-event", "results", "wales"]
    item = (await client.get("/blogs/vote-night/feed.json")).json()["items"][0]
    assert item["tags"] == ["key-event", "results", "wales"]
    assert item["_bulletin"]["tags"] == ["results", "wales"]
