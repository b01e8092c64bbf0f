"""Atom and JSON Feed, read by real consumers: feedparser and a JSON Feed 1.1 schema."""

import json
import xml.etree.ElementTree as ElementTree
from datetime import datetime
from pathlib import Path

import feedparser
import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.support.factories import ADMIN, create_blog, publish_entry

ATOM = "{http://www.w3.org/2005/Atom}"
TOMBSTONES = "{http://purl.org/atompub/tombstones/1.0}"
BASE = "http://127.0.0.1:8000"  # the default BULLETIN_PUBLIC_BASE_URL
SCHEMA = json.loads((Path(__file__).parent / "jsonfeed-1.1.schema.json").read_text())
TRICKY = "<script>alert(\"x\")</script> & 'quotes' ]]> Ünïcode ☃ 中文"


def _date_time(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def _uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://", "tag:"))


FORMATS = FormatChecker()
FORMATS.checks("date-time", raises=ValueError)(_date_time)
FORMATS.checks("uri")(_uri)
JSON_FEED = Draft202012Validator(SCHEMA, format_checker=FORMATS)


async def _create_blog(client: httpx.AsyncClient, **fields: object) -> dict:
    """The count-night blog, with every field a feed shows."""
    body = {
        "title": "Count night, live",
        "summary": "<p>Every <strong>result</strong> as it comes in.</p>",
        "timezone": "Europe/London",
        "topics": ["Elections", "Wales"],
        **fields,
    }
    return await create_blog(client, "count-night", **body)


async def _atom(client: httpx.AsyncClient, slug: str) -> tuple[httpx.Response, dict]:
    response = await client.get(f"/blogs/{slug}/feed.atom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return response, parsed


async def _json_feed(client: httpx.AsyncClient, slug: str) -> dict:
    response = await client.get(f"/blogs/{slug}/feed.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/feed+json; charset=utf-8"
    document = response.json()
    JSON_FEED.validate(document)
    return document


async def test_feedparser_reads_every_field_of_the_atom_feed(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    entry = await publish_entry(
        client,
        "count-night",
        headers=publish_headers,
        headline="Turnout up in Cardiff",
        body="<p>Turnout is <em>up</em> by 4 points.</p>",
        authors=[
            {"name": "Rhian Lloyd", "url": "https://news.example/rhian"},
            {"name": "Dev Patel", "role": "at the count"},
        ],
        media=[
            {
                "kind": "image",
                "url": "https://cdn.news.example/count.jpg",
                "caption": "Ballot boxes arrive",
                "credit": "Photo: A. Jones",
                "alt": "Boxes on a trolley",
            }
        ],
        key_event=True,
    )
    _response, parsed = await _atom(client, "count-night")

    feed = parsed.feed
    assert feed.title == "Count night, live"
    assert feed.subtitle == "<p>Every <strong>result</strong> as it comes in.</p>"
    assert feed.link == f"{BASE}/blogs/count-night"
    assert feed.id.startswith("tag:127.0.0.1,") and feed.id.endswith(":count-night")
    assert {tag.term for tag in feed.tags} == {"Elections", "Wales"}
    assert feed.updated_parsed is not None
    [item] = parsed.entries
    assert item.title == "Turnout up in Cardiff"
    assert item.id == f"{feed.id}/entry/{entry['id']}"
    assert item.link == f"{BASE}/blogs/count-night/entries/{entry['id']}"
    assert item.published == entry["published_at"].replace("+00:00", "Z")
    assert item.updated == entry["updated_at"].replace("+00:00", "Z")
    assert [(a.name, a.get("href")) for a in item.authors] == [
        ("Rhian Lloyd", "https://news.example/rhian"),
        ("Dev Patel", None),
    ]
    assert item.content[0].type == "text/html"
    assert item.content[0].value == "<p>Turnout is <em>up</em> by 4 points.</p>"
    [enclosure] = item.enclosures
    assert enclosure.href == "https://cdn.news.example/count.jpg"
    assert enclosure.type == "image/jpeg"
    assert item.media_content[0]["url"] == "https://cdn.news.example/count.jpg"
    assert item.media_credit[0]["content"] == "Photo: A. Jones"
    assert [link.title for link in item.links if link.rel == "enclosure"] == [
        "Ballot boxes arrive (Photo: A. Jones)"
    ]
    assert [tag.term for tag in item.tags] == ["key-event"]


async def test_atom_names_each_media_caption_in_media_rss(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    await publish_entry(
        client,
        "count-night",
        headers=publish_headers,
        media=[{"kind": "image", "url": "https://cdn.news.example/a.png", "caption": "Queue"}],
    )
    response, _parsed = await _atom(client, "count-night")
    media = "{http://search.yahoo.com/mrss/}"
    [entry] = ElementTree.fromstring(response.content).iter(f"{ATOM}entry")
    assert entry.find(f"{media}content/{media}description").text == "Queue"
    # Atom needs a title: a media-only entry is titled by its caption.
    assert entry.find(f"{ATOM}title").text == "Queue"


async def test_json_feed_passes_the_schema_with_every_field(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    entry = await publish_entry(
        client,
        "count-night",
        headers=publish_headers,
        headline="First result",
        body="<p>Labour hold.</p>",
        authors=[{"name": "Rhian Lloyd", "url": "https://news.example/rhian"}],
        media=[
            {
                "kind": "image",
                "url": "https://cdn.news.example/winner.webp",
                "caption": "The winner",
                "credit": "Photo: A. Jones",
            },
            {"kind": "embed", "url": "https://social.example/post/1"},
        ],
        key_event=True,
    )
    untitled = await publish_entry(
        client, "count-night", headers=publish_headers, body="<p>Recount.</p>"
    )
    document = await _json_feed(client, "count-night")

    assert document["title"] == "Count night, live"
    assert document["home_page_url"] == f"{BASE}/blogs/count-night"
    assert document["feed_url"] == f"{BASE}/blogs/count-night/feed.json"
    assert document["description"] == "Every result as it comes in."
    assert "expired" not in document
    assert document["_bulletin"]["topics"] == ["Elections", "Wales"]
    newest, first = document["items"]
    assert newest["id"].endswith(f"/entry/{untitled['id']}") and "title" not in newest
    assert first["title"] == "First result"
    assert first["url"] == f"{BASE}/blogs/count-night/entries/{entry['id']}"
    assert first["content_html"] == "<p>Labour hold.</p>"
    assert first["date_published"] == entry["published_at"].replace("+00:00", "Z")
    assert first["date_modified"] == entry["updated_at"].replace("+00:00", "Z")
    assert first["authors"] == [{"name": "Rhian Lloyd", "url": "https://news.example/rhian"}]
    assert first["tags"] == ["key-event"]
    image, embed = first["attachments"]
    assert image["mime_type"] == "image/webp"
    assert image["title"] == "The winner (Photo: A. Jones)"
    assert image["_bulletin"]["caption"] == "The winner"
    assert image["_bulletin"]["credit"] == "Photo: A. Jones"
    assert embed == {
        "url": "https://social.example/post/1",
        "mime_type": "text/html",
        "_bulletin": {"kind": "embed", "caption": "", "credit": "", "alt": ""},
    }


async def test_an_edit_changes_updated_and_keeps_the_ids(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    entry = await publish_entry(
        client, "count-night", headers=publish_headers, headline="Early count"
    )
    _response, before = await _atom(client, "count-night")
    json_before = await _json_feed(client, "count-night")

    response = await client.patch(
        f"/api/v1/blogs/count-night/entries/{entry['id']}",
        json={"headline": "Early count: recount ordered"},
        headers=publish_headers,
    )
    assert response.status_code == 200, response.text
    _response, after = await _atom(client, "count-night")
    json_after = await _json_feed(client, "count-night")

    assert after.entries[0].id == before.entries[0].id
    assert after.entries[0].published == before.entries[0].published
    assert after.entries[0].updated > before.entries[0].updated
    assert after.entries[0].title == "Early count: recount ordered"
    assert after.feed.updated > before.feed.updated
    assert json_after["items"][0]["id"] == json_before["items"][0]["id"]
    assert json_after["items"][0]["date_modified"] > json_before["items"][0]["date_modified"]


async def test_text_with_markup_in_titles_survives_escaped(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client, title=TRICKY, topics=[TRICKY])
    await publish_entry(
        client,
        "count-night",
        headers=publish_headers,
        headline=TRICKY,
        authors=[{"name": TRICKY}],
        media=[{"kind": "image", "url": "https://cdn.news.example/x.jpg", "caption": TRICKY}],
    )
    response, parsed = await _atom(client, "count-night")
    document = await _json_feed(client, "count-night")

    assert b"<script>" not in response.content
    assert b"&lt;script&gt;" in response.content
    assert "Ünïcode ☃ 中文".encode() in response.content  # kept as UTF-8, not as references
    assert parsed.feed.title == TRICKY
    assert parsed.entries[0].title == TRICKY
    assert parsed.entries[0].author == TRICKY
    assert parsed.feed.tags[0].term == TRICKY
    assert document["title"] == TRICKY
    assert document["items"][0]["title"] == TRICKY
    assert "Ünïcode ☃ 中文".encode() in (await client.get("/blogs/count-night/feed.json")).content


async def test_characters_xml_cannot_carry_are_dropped_from_atom_only(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    await publish_entry(
        client, "count-night", headers=publish_headers, headline="Tab\tand\x0bvertical\x1b"
    )
    _response, parsed = await _atom(client, "count-night")
    document = await _json_feed(client, "count-night")

    assert parsed.entries[0].title == "Tab\tandvertical"
    assert document["items"][0]["title"] == "Tab\tand\x0bvertical\x1b"


async def test_deletions_are_atom_tombstones_and_listed_in_the_json_feed(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    kept = await publish_entry(client, "count-night", headers=publish_headers, headline="Kept")
    deleted = await publish_entry(
        client, "count-night", headers=publish_headers, headline="Wrong ward"
    )
    unpublished = await publish_entry(
        client, "count-night", headers=publish_headers, headline="Too early"
    )
    returned = await publish_entry(
        client, "count-night", headers=publish_headers, headline="Back again"
    )
    entries = "/api/v1/blogs/count-night/entries"
    assert (
        await client.delete(f"{entries}/{deleted['id']}", headers=publish_headers)
    ).status_code == 204
    for entry, status in ((unpublished, "draft"), (returned, "draft"), (returned, "published")):
        response = await client.patch(
            f"{entries}/{entry['id']}", json={"status": status}, headers=publish_headers
        )
        assert response.status_code == 200, response.text

    response, parsed = await _atom(client, "count-night")
    document = await _json_feed(client, "count-night")

    feed_id = parsed.feed.id
    root = ElementTree.fromstring(response.content)
    tombstones = {
        element.get("ref"): element.get("when")
        for element in root.findall(f"{TOMBSTONES}deleted-entry")
    }
    assert set(tombstones) == {
        f"{feed_id}/entry/{deleted['id']}",
        f"{feed_id}/entry/{unpublished['id']}",
    }
    assert all(_date_time(when) for when in tombstones.values())
    assert [item.title for item in parsed.entries] == ["Back again", "Kept"]
    assert {item["entry_id"] for item in document["_bulletin"]["deleted"]} == {
        deleted["id"],
        unpublished["id"],
    }
    assert kept["id"] in {item["_bulletin"]["entry_id"] for item in document["items"]}


async def test_an_ended_blog_is_marked_in_both_feeds(client: httpx.AsyncClient) -> None:
    await _create_blog(client)
    response = await client.patch(
        "/api/v1/blogs/count-night", json={"status": "ended"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    _response, parsed = await _atom(client, "count-night")
    document = await _json_feed(client, "count-night")

    assert ("ended", f"{BASE}/#status") in {(tag.term, tag.scheme) for tag in parsed.feed.tags}
    assert document["expired"] is True
    assert document["_bulletin"]["status"] == "ended"


async def test_the_feeds_hold_the_newest_fifty_published_entries(
    client: httpx.AsyncClient, publish_headers: dict
) -> None:
    await _create_blog(client)
    published = [
        (await publish_entry(client, "count-night", headers=publish_headers, headline=f"Ward {n}"))[
            "id"
        ]
        for n in range(52)
    ]
    await publish_entry(
        client, "count-night", headers=publish_headers, headline="Draft", status="draft"
    )
    _response, parsed = await _atom(client, "count-night")
    document = await _json_feed(client, "count-night")

    newest_fifty = list(reversed(published))[:50]
    assert [int(item.id.rsplit("/", 1)[1]) for item in parsed.entries] == newest_fifty
    assert [item["_bulletin"]["entry_id"] for item in document["items"]] == newest_fifty


async def test_an_empty_blog_has_valid_feeds(client: httpx.AsyncClient, blog: dict) -> None:
    _response, parsed = await _atom(client, blog["slug"])
    document = await _json_feed(client, blog["slug"])
    assert parsed.entries == [] and parsed.feed.title == "Vote night"
    assert document["items"] == []


@pytest.mark.parametrize("feed", ["feed.atom", "feed.json"])
async def test_a_feed_of_an_unknown_blog_is_a_json_404(
    client: httpx.AsyncClient, feed: str
) -> None:
    response = await client.get(f"/blogs/no-such-blog/{feed}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
