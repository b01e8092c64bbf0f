"""Retractions retract: once an entry is deleted, taken back to draft or edited with
`redact`, no public read of the change log shows what it said before — the log keeps its
seqs and types, and says what it rewrote."""

import httpx
import pytest

from tests.support.factories import read_log

SLUG = "vote-night"
SECRET = "Named source: Jane Roe, 12 Elm St"
CONTACT = "jane@example.org"


async def _publish(client: httpx.AsyncClient, headers: dict, key_event: bool = False) -> dict:
    response = await client.post(
        f"/api/v1/blogs/{SLUG}/entries",
        json={"headline": SECRET, "body": f"<p>Contact: {CONTACT}</p>", "key_event": key_event},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _patch(client: httpx.AsyncClient, headers: dict, entry: dict, **fields) -> dict:
    response = await client.patch(
        f"/api/v1/blogs/{SLUG}/entries/{entry['id']}", json=fields, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def _mentions_the_secret(log: list[dict]) -> bool:
    text = str(log)
    return SECRET in text or CONTACT in text


@pytest.mark.parametrize("retraction", ["delete", "back to draft"])
async def test_an_entry_taken_out_of_public_view_leaves_nothing_of_itself_in_the_log(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict, retraction: str
) -> None:
    entry = await _publish(client, publish_headers, key_event=True)
    await _patch(client, publish_headers, entry, headline="A source", body="<p>(redacted)</p>")
    await _patch(client, publish_headers, entry, pinned=True)
    before = await read_log(client, SLUG)
    await read_log(client, SLUG)  # asked twice: the answer is kept in memory
    assert _mentions_the_secret(before)

    if retraction == "delete":
        response = await client.delete(
            f"/api/v1/blogs/{SLUG}/entries/{entry['id']}", headers=publish_headers
        )
        assert response.status_code == 204
    else:
        await _patch(client, publish_headers, entry, status="draft")
    log = await read_log(client, SLUG)  # anonymous

    assert not _mentions_the_secret(log)
    assert "(redacted)" not in str(log)
    # The same numbers and types as before, then the tombstone and the redaction.
    assert [(e["seq"], e["type"]) for e in log[: len(before)]] == [
        (e["seq"], e["type"]) for e in before
    ]
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert [e["type"] for e in log[len(before) :]] == ["entry.deleted", "entry.redacted"]
    for earlier in log[: len(before)]:
        assert earlier["entry"] == {**earlier["entry"], "id": entry["id"], "status": "deleted"}
        assert "html" not in earlier and "key_event_html" not in earlier
        assert "headline_html" not in earlier
    assert log[-1]["redacted_seqs"] == [e["seq"] for e in before]


async def test_an_edit_with_redact_rewrites_earlier_versions_to_the_new_one(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict
) -> None:
    entry = await _publish(client, publish_headers)
    await _patch(client, publish_headers, entry, body="<p>Contact withheld.</p>", key_event=True)

    current = await _patch(client, publish_headers, entry, headline="A local resident", redact=True)
    log = await read_log(client, SLUG)

    assert not _mentions_the_secret(log)
    assert [e["type"] for e in log] == [
        "entry.created",
        "entry.updated",
        "entry.updated",
        "entry.redacted",
    ]
    for earlier in log[:3]:
        assert earlier["entry"] == current
        assert "A local resident" in earlier["html"]
        assert "A local resident" in earlier["key_event_html"]
        assert "A local resident" in earlier["headline_html"]
    assert log[3]["redacted_seqs"] == [1, 2]


async def test_an_edit_without_redact_keeps_the_history_of_the_log(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict
) -> None:
    entry = await _publish(client, publish_headers)
    await _patch(client, publish_headers, entry, headline="Polls close")
    log = await read_log(client, SLUG)
    assert SECRET in log[0]["entry"]["headline"]
    assert [e["type"] for e in log] == ["entry.created", "entry.updated"]


async def test_redacting_an_entry_with_nothing_else_to_change_still_rewrites_its_history(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict
) -> None:
    entry = await _publish(client, publish_headers)
    current = await _patch(
        client, publish_headers, entry, headline="A source", body="<p>Contact withheld.</p>"
    )
    assert _mentions_the_secret(await read_log(client, SLUG))

    again = await _patch(client, publish_headers, entry, redact=True)
    log = await read_log(client, SLUG)

    assert again == current  # no new version: only the log was rewritten
    assert not _mentions_the_secret(log)
    assert [e["type"] for e in log] == ["entry.created", "entry.updated", "entry.redacted"]
    assert log[2]["redacted_seqs"] == [1]
