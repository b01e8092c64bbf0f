"""Drafts, submissions and returned entries are private: a public reader never sees one,
on either database and either WebSocket edge — not live over WebSocket or SSE, not in a
replay from seq 0, the change log, the entry list or an entry's URL, the feeds or the
reader page (its key events included), and not from a URL first read with a token."""

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.clients import next_message
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry
from tests.support.people import Person, add_person
from tests.support.servers import LiveServer

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
SECRETS = ["Casualty figure unconfirmed", "Embargoed until ten", "Source not checked"]
NOTE = "Who told us this?"


async def sse_events(server: LiveServer, since: int) -> AsyncIterator[dict]:
    """The events of the blog's SSE stream, read from `since`, as they arrive."""
    url = f"{server.http}/api/v1/blogs/{SLUG}/sse?since={since}"
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        event: dict = {}
        async for line in response.aiter_lines():
            if line.startswith(("id: ", "event: ", "data: ")):
                key, value = line.split(": ", 1)
                event[key] = value
            elif not line and "id" in event:
                yield json.loads(event["data"])
                event = {}
            elif not line:
                event = {}


async def write_privately(server: LiveServer, cora: Person, eddie: Person) -> list[int]:
    """A draft, a submission, and a returned entry (with a note): all key events."""
    client = server.client
    draft = await publish_entry(
        client, headers=cora.headers, headline=SECRETS[0], status="draft", key_event=True
    )
    submitted = await publish_entry(
        client, headers=cora.headers, headline=SECRETS[1], status="submitted", key_event=True
    )
    returned = await publish_entry(
        client, headers=cora.headers, headline=SECRETS[2], status="submitted", key_event=True
    )
    response = await client.patch(
        f"{ENTRIES}/{returned['id']}",
        json={"status": "returned", "review_note": NOTE},
        headers=eddie.headers,
    )
    assert response.status_code == 200, response.text
    # Edited while private, by its writer: still nothing public.
    response = await client.patch(
        f"{ENTRIES}/{draft['id']}", json={"body": f"<p>{SECRETS[0]}</p>"}, headers=cora.headers
    )
    assert response.status_code == 200, response.text
    return [draft["id"], submitted["id"], returned["id"]]


def assert_public(text: str) -> None:
    for secret in [*SECRETS, NOTE]:
        assert secret not in text


async def test_a_public_reader_never_sees_an_entry_before_it_is_published(
    server: LiveServer,
) -> None:
    await create_blog(server.client)
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    eddie = await add_person(server.app, "Eddie Grant", role="editor")
    live: ClientConnection
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as live:
        assert await next_message(live) == {"type": "hello", "seq": 0}
        sse = sse_events(server, since=0)
        first_sse = asyncio.create_task(anext(sse))
        private_ids = await write_privately(server, cora, eddie)
        marker = await publish_entry(server.client, headers=eddie.headers, headline="Polls close")
        # The first thing either stream carries is the first published entry: seq 1.
        seen = await next_message(live)
        assert (seen["seq"], seen["entry"]["id"]) == (1, marker["id"])
        assert (await asyncio.wait_for(first_sse, 10))["entry"]["id"] == marker["id"]
        # Approving a submission makes it public, and only then.
        approved = await server.client.patch(
            f"{ENTRIES}/{private_ids[1]}", json={"status": "published"}, headers=eddie.headers
        )
        assert approved.status_code == 200, approved.text
        seen = await next_message(live)
        assert (seen["seq"], seen["type"], seen["entry"]["id"]) == (
            2, "entry.created", private_ids[1],
        )  # fmt: skip
        await sse.aclose()
    still_private = [private_ids[0], private_ids[2]]
    public_secrets = [SECRETS[0], SECRETS[2], NOTE]

    # A replay from 0, over WebSocket and SSE, and the change log: the same two events.
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=0") as replay:
        replayed = [await next_message(replay) for _ in range(2)]
    assert [e["seq"] for e in replayed] == [1, 2]
    log = (await server.client.get(f"/api/v1/blogs/{SLUG}/events?since=0")).json()
    assert [e["seq"] for e in log["items"]] == [1, 2] and log["head"] == 2
    for text in [json.dumps(replayed), json.dumps(log)]:
        for secret in public_secrets:
            assert secret not in text

    # The entry list, each private entry's URL, the feeds and the page.
    listing = (await server.client.get(ENTRIES)).json()
    assert [e["id"] for e in listing["items"]] == [private_ids[1], marker["id"]]
    key_events = (await server.client.get(f"{ENTRIES}?key_events=true")).json()
    assert [e["id"] for e in key_events["items"]] == [private_ids[1]]
    for entry_id in still_private:
        assert (await server.client.get(f"{ENTRIES}/{entry_id}")).status_code == 404
    for path in (f"/blogs/{SLUG}/feed.atom", f"/blogs/{SLUG}/feed.json", f"/blogs/{SLUG}"):
        body = (await server.client.get(path)).text
        for secret in public_secrets:
            assert secret not in body
        assert NOTE not in body
    for status in ("draft", "submitted", "returned", "scheduled"):
        anonymous = await server.client.get(f"{ENTRIES}?status={status}")
        assert anonymous.status_code == 401


async def test_a_url_first_read_with_a_token_shows_an_anonymous_reader_only_what_is_public(
    server: LiveServer,
) -> None:
    await create_blog(server.client)
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    eddie = await add_person(server.app, "Eddie Grant", role="editor")
    draft_id, submitted_id, returned_id = await write_privately(server, cora, eddie)
    await publish_entry(server.client, headline="Polls close")
    urls = [
        f"{ENTRIES}/{draft_id}",
        f"{ENTRIES}/{submitted_id}",
        f"{ENTRIES}/{returned_id}",
        ENTRIES,
        f"{ENTRIES}?status=submitted",
        f"{ENTRIES}?status=returned",
        f"/api/v1/blogs/{SLUG}",
    ]
    for url in urls:
        with_token = await server.client.get(url, headers=eddie.headers)
        assert with_token.status_code == 200, (url, with_token.text)
        if "status=" in url or url.split("/")[-1].isdigit():
            assert with_token.headers["cache-control"] == "private, no-store"
            # No cache validator: only the entry's version, for If-Match (edit safety).
            assert re.fullmatch(r'"entry-\d+-v\d+"', with_token.headers.get("etag", '"entry-0-v0"'))
        # Twice anonymously: the second would be answered from memory if anything was kept.
        for _ in range(2):
            anonymous = await server.client.get(url)
            assert anonymous.status_code in (200, 401, 404), url
            assert_public(anonymous.text)
        if url.split("/")[-1].isdigit():
            assert anonymous.status_code == 404
    # The editor's read of the returned entry did carry the note: it is the editor's alone.
    returned = await server.client.get(f"{ENTRIES}/{returned_id}", headers=cora.headers)
    assert returned.json()["review_note"] == NOTE
    # A legacy admin token's reads are the same private answers.
    assert (await server.client.get(f"{ENTRIES}/{draft_id}", headers=ADMIN)).status_code == 200
    assert (await server.client.get(f"{ENTRIES}/{draft_id}")).status_code == 404
