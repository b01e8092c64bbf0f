"""Visible corrections: an edit of a published entry shows readers "Updated" (unless marked a
minor fix) and, with a correction, a "Correction: ..." note with its time, on every surface:
the JSON API, the change-log event and its `html`, the page, Atom, JSON Feed and JSON-LD;
the caches move with it. Notes accumulate; refusals write nothing. On SQLite and PostgreSQL."""

import json
import re
import xml.etree.ElementTree as ElementTree
from datetime import datetime

import httpx
from fastapi import FastAPI

from tests.support.errors import UNCHECKED, assert_error
from tests.support.factories import ADMIN, SLUG, publish_entry, read_log

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
ATOM = "{http://www.w3.org/2005/Atom}"
NOTE = "An earlier version of this post gave the turnout as 61%; it was 51%."
LD = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)


async def edit(client: httpx.AsyncClient, entry_id: int, **fields: object) -> dict:
    response = await client.patch(f"{ENTRIES}/{entry_id}", json=fields, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_correction_shows_on_every_surface_readers_have(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    entry = await publish_entry(client, headline="Turnout", body="<p>Turnout was 61%.</p>")
    assert "modified_at" not in entry and "correction" not in entry
    atom_before = await client.get(f"/blogs/{SLUG}/feed.atom")
    page_before = await client.get(f"/blogs/{SLUG}")

    corrected = await edit(
        client, entry["id"], body="<p>Turnout was 51%.</p>", correction=f"  {NOTE}\n"
    )

    # The API: the note (trimmed) with its time, and when readers were told it changed.
    assert corrected["correction"] == {"note": NOTE, "at": corrected["updated_at"]}
    assert corrected["corrections"] == [corrected["correction"]]
    assert corrected["modified_at"] == corrected["updated_at"]
    read = (await client.get(f"{ENTRIES}/{entry['id']}")).json()
    assert (read["correction"], read["modified_at"]) == (
        corrected["correction"],
        corrected["modified_at"],
    )

    # The event a live page applies, with the rendering it inserts.
    event = (await read_log(client, SLUG))[-1]
    assert event["type"] == "entry.updated"
    assert event["entry"]["correction"] == corrected["correction"]
    at_utc = moment(corrected["modified_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    for html in (event["html"], (await client.get(f"/blogs/{SLUG}")).text):
        assert f'Updated <time datetime="{at_utc}" title=' in html
        assert "<strong>Correction:</strong> An earlier version of this post gave the" in html
        assert "Turnout was 51%." in html

    # Atom: `updated` moves and the note is in the content.
    atom = await client.get(f"/blogs/{SLUG}/feed.atom")
    assert atom.headers["etag"] != atom_before.headers["etag"]
    [item] = ElementTree.fromstring(atom.content).iter(f"{ATOM}entry")
    assert moment(item.findtext(f"{ATOM}updated") or "") == moment(corrected["updated_at"])
    content = item.findtext(f"{ATOM}content") or ""
    assert "Correction:</strong> An earlier version" in content and "51%" in content

    # JSON Feed: date_modified and content_html.
    feed = (await client.get(f"/blogs/{SLUG}/feed.json")).json()
    [json_item] = feed["items"]
    assert moment(json_item["date_modified"]) == moment(corrected["updated_at"])
    assert "<strong>Correction:</strong> An earlier version" in json_item["content_html"]

    # JSON-LD: the update's and the blog's dateModified.
    page = await client.get(f"/blogs/{SLUG}")
    assert page.headers["etag"] != page_before.headers["etag"]
    match = LD.search(page.text)
    assert match is not None
    data = json.loads(match.group(1))
    [update] = data["liveBlogUpdate"]
    assert update["dateModified"] == at_utc
    assert data["dateModified"] == at_utc

    # The revision keeps the note.
    revisions = (await client.get(f"{ENTRIES}/{entry['id']}/revisions", headers=ADMIN)).json()
    assert [(r["correction"], r["minor"]) for r in revisions["items"]] == [
        (NOTE, False),
        (None, False),
    ]


async def test_caches_answer_a_corrected_entry_at_once(
    client: httpx.AsyncClient, blog: dict
) -> None:
    entry = await publish_entry(client, headline="Turnout")
    urls = [f"/blogs/{SLUG}/feed.atom", f"/blogs/{SLUG}/feed.json", f"/blogs/{SLUG}"]
    tags = {}
    for url in urls:
        first = await client.get(url)
        tags[url] = first.headers["etag"]
        again = await client.get(url, headers={"If-None-Match": tags[url]})
        assert again.status_code == 304

    # A correction alone, without any other change, is an edit readers are told of.
    await edit(client, entry["id"], correction=NOTE)

    for url in urls:
        fresh = await client.get(url, headers={"If-None-Match": tags[url]})
        assert fresh.status_code == 200 and fresh.headers["etag"] != tags[url]
        assert "An earlier version of this post" in fresh.text


async def test_a_plain_edit_shows_updated_and_a_minor_fix_or_a_pin_does_not(
    client: httpx.AsyncClient, blog: dict
) -> None:
    entry = await publish_entry(client, headline="Turnout", body="<p>Teh count.</p>")

    fixed = await edit(client, entry["id"], body="<p>The count.</p>", minor=True)
    pinned = await edit(client, entry["id"], pinned=True)
    for unchanged in (fixed, pinned):
        assert "modified_at" not in unchanged and "correction" not in unchanged
    page = (await client.get(f"/blogs/{SLUG}")).text
    assert "entry__updated" not in page and "The count." in page

    updated = await edit(client, entry["id"], body="<p>The count goes on.</p>")
    assert updated["modified_at"] == updated["updated_at"]
    assert "correction" not in updated
    # A later minor fix keeps the "Updated" time readers were given.
    later = await edit(client, entry["id"], body="<p>The count goes on!</p>", minor=True)
    assert later["modified_at"] == updated["modified_at"]
    assert later["updated_at"] > updated["updated_at"]
    revisions = (await client.get(f"{ENTRIES}/{entry['id']}/revisions", headers=ADMIN)).json()
    assert [r["minor"] for r in revisions["items"]][:2] == [True, False]


async def test_corrections_accumulate_and_the_newest_is_the_correction(
    client: httpx.AsyncClient, blog: dict
) -> None:
    entry = await publish_entry(client, headline="Turnout")
    first = await edit(client, entry["id"], headline="Turnout: 51%", correction="First note.")
    second = await edit(client, entry["id"], headline="Turnout: 52%", correction="Second note.")
    # An edit without a note keeps the notes there are.
    third = await edit(client, entry["id"], headline="Turnout: 52 per cent")

    assert [c["note"] for c in third["corrections"]] == ["First note.", "Second note."]
    assert third["correction"] == second["correction"] != first["correction"]
    assert third["modified_at"] == third["updated_at"]
    page = (await client.get(f"/blogs/{SLUG}")).text
    assert page.index("First note.") < page.index("Second note.")
    assert page.count("<strong>Correction:</strong>") == 2


async def test_a_correction_is_refused_where_it_cannot_apply_and_nothing_is_written(
    client: httpx.AsyncClient, blog: dict
) -> None:
    draft = await publish_entry(client, headline="Draft", status="draft")
    published = await publish_entry(client, headline="Live")
    head = len(await read_log(client, SLUG))

    cases = [
        (draft["id"], {"correction": NOTE}, {"correction"}),
        (published["id"], {"correction": NOTE, "status": "draft"}, None),
        (published["id"], {"correction": "   "}, {"correction"}),
        (published["id"], {"correction": ""}, {"correction"}),
        (published["id"], {"correction": "x" * 281}, {"correction"}),
        (published["id"], {"correction": NOTE, "minor": True}, None),
        (published["id"], {"minor": "yes"}, {"minor"}),
    ]
    for entry_id, body, fields in cases:
        response = await client.patch(f"{ENTRIES}/{entry_id}", json=body, headers=ADMIN)
        assert_error(response, 422, "invalid_input", fields=fields or UNCHECKED)

    assert len(await read_log(client, SLUG)) == head
    for entry in (draft, published):
        now = (await client.get(f"{ENTRIES}/{entry['id']}", headers=ADMIN)).json()
        assert now["version"] == 1 and "corrections" not in now
    # A note of exactly 280 characters is fine.
    longest = await edit(client, published["id"], correction="x" * 280)
    assert len(longest["correction"]["note"]) == 280
