"""Entries through the API: publishing, listing, editing, pinning, deleting, drafts and
idempotent retries."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.factories import publish_entry, read_log

ENTRIES = "/api/v1/blogs/vote-night/entries"
UPDATE = "<p>Update</p>"


async def test_a_published_entry_is_stored_and_logged_with_its_rendered_html(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(
        client,
        headers=publish_headers,
        headline="Polls close in the east",
        body="<p>Counting begins “now”.</p>",
        authors=[{"name": "Ada Reyes", "role": "Political editor"}],
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
    assert entry["status"] == "published"
    assert entry["version"] == 1
    assert entry["published_at"] == "2026-03-04T12:46:00Z"
    assert (await client.get(f"{ENTRIES}/{entry['id']}")).json() == entry

    [event] = await read_log(client, "vote-night")
    assert event["seq"] == 1
    assert event["type"] == "entry.created"
    assert event["entry"] == entry
    html = event["html"]
    assert 'id="entry-' in html
    assert (
        '<time datetime="2026-03-04T12:46:00Z" title="Wednesday, March 4, 2026, 7:46\u202fAM EST">'
        "7:46\u202fAM</time>" in html
    )
    assert "Counting begins “now”." in html
    assert "Photo: Lee Park" in html
    assert "Ada Reyes" in html


async def test_entries_are_listed_newest_first_with_a_cursor_for_older_pages(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    start = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    ids = [
        (
            await publish_entry(
                client,
                headers=publish_headers,
                body=UPDATE,
                published_at=(start + timedelta(minutes=n)).isoformat(),
            )
        )["id"]
        for n in range(5)
    ]
    # A back-filled item lands between the others, by its published time.
    backfilled = await publish_entry(
        client,
        headers=publish_headers,
        body=UPDATE,
        published_at=(start + timedelta(minutes=2, seconds=30)).isoformat(),
    )
    expected = [ids[4], ids[3], backfilled["id"], ids[2], ids[1], ids[0]]
    seen, cursor = [], None
    while True:
        query = "?limit=4" + (f"&before={cursor}" if cursor else "")
        page = (await client.get(ENTRIES + query)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


async def test_key_events_filter_lists_only_key_events(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await publish_entry(client, headers=publish_headers, body=UPDATE)
    key = await publish_entry(client, headers=publish_headers, body=UPDATE, key_event=True)
    page = (await client.get(f"{ENTRIES}?key_events=true")).json()
    assert [item["id"] for item in page["items"]] == [key["id"]]


async def test_editing_bumps_the_version_and_logs_entry_updated(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(
        client, headers=publish_headers, body=UPDATE, headline="Turnout high"
    )
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}",
        json={"headline": "Turnout at a record high"},
        headers=publish_headers,
    )
    assert response.status_code == 200
    edited = response.json()
    assert edited["headline"] == "Turnout at a record high"
    assert edited["version"] == 2
    assert edited["id"] == entry["id"]
    assert edited["created_at"] == entry["created_at"]
    _created, updated = await read_log(client, "vote-night")
    assert updated["type"] == "entry.updated"
    assert updated["seq"] == 2
    assert updated["entry"] == edited
    assert "Turnout at a record high" in updated["html"]


async def test_an_edit_that_changes_nothing_writes_nothing(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(client, headers=publish_headers, body=UPDATE, headline="Same")
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"headline": "Same"}, headers=publish_headers
    )
    assert response.json()["version"] == 1
    assert len(await read_log(client, "vote-night")) == 1


async def test_deleting_leaves_a_tombstone_in_the_log_and_hides_the_entry(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(client, headers=publish_headers, body=UPDATE)
    response = await client.delete(f"{ENTRIES}/{entry['id']}", headers=publish_headers)
    assert response.status_code == 204
    assert (await client.get(f"{ENTRIES}/{entry['id']}")).status_code == 404
    assert (await client.get(ENTRIES)).json()["items"] == []
    events = await read_log(client, "vote-night")
    assert [e["type"] for e in events] == ["entry.created", "entry.deleted", "entry.redacted"]
    assert events[1]["entry"]["id"] == entry["id"]
    assert events[1]["entry"]["status"] == "deleted"
    assert "html" not in events[1]


async def test_deleting_twice_succeeds_and_logs_once(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(client, headers=publish_headers, body=UPDATE)
    for _ in range(2):
        response = await client.delete(f"{ENTRIES}/{entry['id']}", headers=publish_headers)
        assert response.status_code == 204
    assert len(await read_log(client, "vote-night")) == 3  # created, deleted, redacted


async def test_a_deleted_entry_cannot_be_edited_back_to_life(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = await publish_entry(client, headers=publish_headers, body=UPDATE)
    await client.delete(f"{ENTRIES}/{entry['id']}", headers=publish_headers)
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"headline": "Back"}, headers=publish_headers
    )
    assert response.status_code == 404
    assert [e["type"] for e in await read_log(client, "vote-night")] == [
        "entry.created",
        "entry.deleted",
        "entry.redacted",
    ]


async def test_pinning_an_entry_unpins_the_previous_one(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    first = await publish_entry(client, headers=publish_headers, body=UPDATE, pinned=True)
    second = await publish_entry(client, headers=publish_headers, body=UPDATE)
    response = await client.patch(
        f"{ENTRIES}/{second['id']}", json={"pinned": True}, headers=publish_headers
    )
    assert response.json()["pinned"] is True
    assert (await client.get(f"{ENTRIES}/{first['id']}")).json()["pinned"] is False
    assert (await client.get("/api/v1/blogs/vote-night")).json()["pinned_entry_id"] == second["id"]
    events = await read_log(client, "vote-night")
    assert [(e["type"], e["entry"]["id"]) for e in events[2:]] == [
        ("entry.unpinned", first["id"]),
        ("entry.pinned", second["id"]),
    ]
    pinned = [item for item in (await client.get(ENTRIES)).json()["items"] if item["pinned"]]
    assert [item["id"] for item in pinned] == [second["id"]]


async def test_drafts_stay_private_until_published(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    draft = await publish_entry(
        client, headers=publish_headers, body=UPDATE, status="draft", headline="Embargoed"
    )
    assert (await client.get(f"{ENTRIES}/{draft['id']}")).status_code == 404
    assert (
        await client.get(f"{ENTRIES}/{draft['id']}", headers=publish_headers)
    ).status_code == 200
    assert (await client.get(ENTRIES)).json()["items"] == []
    assert (await client.get(f"{ENTRIES}?status=draft")).status_code == 401
    drafts = (await client.get(f"{ENTRIES}?status=draft", headers=publish_headers)).json()
    assert [item["id"] for item in drafts["items"]] == [draft["id"]]
    assert await read_log(client, "vote-night") == []

    await client.patch(
        f"{ENTRIES}/{draft['id']}", json={"status": "published"}, headers=publish_headers
    )
    [event] = await read_log(client, "vote-night")
    assert event["type"] == "entry.created"
    assert event["entry"]["headline"] == "Embargoed"


async def test_a_draft_cannot_be_pinned(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    response = await client.post(
        ENTRIES, json={"body": "x", "status": "draft", "pinned": True}, headers=publish_headers
    )
    assert response.status_code == 422
    assert "pinned" in response.json()["error"]["fields"]


@pytest.mark.parametrize("field", ["body", "authors", "status", "key_event"])
async def test_null_is_refused_for_fields_that_cannot_be_empty(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str], field: str
) -> None:
    entry = await publish_entry(client, headers=publish_headers, body=UPDATE)
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={field: None}, headers=publish_headers
    )
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]
    assert (await client.get(f"{ENTRIES}/{entry['id']}")).json() == entry


# --- retries with an Idempotency-Key ---------------------------------------------

ENTRY = {"headline": "Polls close", "body": "<p>Counting begins.</p>"}


async def test_retry_with_same_idempotency_key_returns_original_entry(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headers = {**publish_headers, "Idempotency-Key": "desk-7f3a"}
    first = await client.post(ENTRIES, json=ENTRY, headers=headers)
    retry = await client.post(ENTRIES, json=ENTRY, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len((await client.get(ENTRIES)).json()["items"]) == 1
    assert len(await read_log(client, "vote-night")) == 1


@pytest.mark.parametrize("then", ["edited", "deleted"])
async def test_a_retry_after_the_entry_changed_gets_the_first_answer_and_writes_nothing(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str], then: str
) -> None:
    # A tool whose first answer was lost retries: it must learn that its entry was made, as
    # it was made, and nothing may be published again, whatever happened to it since.
    headers = {**publish_headers, "Idempotency-Key": "desk-lost-answer"}
    first = await client.post(ENTRIES, json=ENTRY, headers=headers)
    entry_url = f"{ENTRIES}/{first.json()['id']}"
    if then == "edited":
        await client.patch(entry_url, json={"headline": "Polls closed"}, headers=publish_headers)
    else:
        await client.delete(entry_url, headers=publish_headers)
    log_before = await read_log(client, "vote-night")

    retry = await client.post(ENTRIES, json=ENTRY, headers=headers)

    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await read_log(client, "vote-night") == log_before
    still_there = await client.get(entry_url)
    if then == "edited":
        assert still_there.json()["headline"] == "Polls closed"
    else:
        assert still_there.status_code == 404


async def test_concurrent_retries_with_one_key_store_one_entry(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headers = {**publish_headers, "Idempotency-Key": "burst-1"}
    responses = await asyncio.gather(
        *(client.post(ENTRIES, json=ENTRY, headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await read_log(client, "vote-night")) == 1


async def test_reusing_a_key_for_a_different_entry_is_refused(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headers = {**publish_headers, "Idempotency-Key": "desk-7f3a"}
    await client.post(ENTRIES, json=ENTRY, headers=headers)
    response = await client.post(ENTRIES, json={**ENTRY, "headline": "Other"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await read_log(client, "vote-night")) == 1


async def test_requests_without_a_key_are_not_deduplicated(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    for _ in range(2):
        await client.post(ENTRIES, json=ENTRY, headers=publish_headers)
    assert len((await client.get(ENTRIES)).json()["items"]) == 2
