"""The undo window as readers and partners live it, on both stacks (SQLite with the memory
broker, PostgreSQL with Redis) on a real server: a publish undone within its hold never
reaches a public reader connected during the hold, the log, a feed, the page or a webhook,
while the newsroom sees it waiting and going back; a hold that runs out is published once,
at or after its due time, with one seq."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from websockets.asyncio.client import connect

from app.config import Settings
from tests.support.clients import next_message
from tests.support.factories import ADMIN, SECRET_KEY, SLUG, create_blog, publish_entry, read_log
from tests.support.people import add_person
from tests.support.servers import LiveServer, live_server
from tests.support.sessions import SseStream, sse_stream
from tests.support.webhook_receiver import Receiver

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
SECRET = "Turnout 212%"
PUBLIC_PATHS = (f"/blogs/{SLUG}/feed.atom", f"/blogs/{SLUG}/feed.json", f"/blogs/{SLUG}", ENTRIES)


@pytest.fixture
async def server(stack_settings: Settings) -> AsyncIterator[LiveServer]:
    settings = stack_settings.model_copy(
        update={
            "secret_key": SecretStr(SECRET_KEY),
            "webhook_allow_private_targets": True,
            "webhook_poll_seconds": 0.2,
            "schedule_sweep_seconds": 0.2,
        }
    )
    async with live_server(settings) as running:
        yield running


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def next_note(stream: SseStream) -> dict:
    message = await stream.next()
    assert message.id is None, message  # private: no seq
    return message.data


async def public_texts(server: LiveServer) -> list[str]:
    """The feeds, the page and the entry list, each read twice (the second from memory)."""
    return [(await server.client.get(path)).text for path in PUBLIC_PATHS for _ in range(2)]


async def test_a_publish_undone_within_its_hold_reaches_no_reader_log_feed_page_or_webhook(
    server: LiveServer, receiver: Receiver, secret: str
) -> None:
    client = server.client
    await create_blog(client)
    hook = {"url": receiver.url, "secret": secret}
    assert (
        await client.post(f"/api/v1/blogs/{SLUG}/webhooks", json=hook, headers=ADMIN)
    ).is_success
    eddie = await add_person(server.app, "Eddie Grant", role="editor")
    first = await publish_entry(client, headline="Polls open")
    await asyncio.to_thread(receiver.wait_for_accepted, 1)
    before = await public_texts(server)
    newsroom_url = f"{server.http}/api/v1/blogs/{SLUG}/newsroom/sse"
    async with (
        sse_stream(newsroom_url, headers=eddie.headers) as newsroom,
        connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as public_ws,
        sse_stream(f"{server.http}/api/v1/blogs/{SLUG}/sse") as public_sse,
    ):
        assert (await newsroom.next()).event == "newsroom.hello"
        assert (await newsroom.next()).data == {"type": "hello", "seq": 1}
        assert await next_message(public_ws) == {"type": "hello", "seq": 1}
        assert (await public_sse.next()).data == {"type": "hello", "seq": 1}

        held = await client.post(
            ENTRIES, json={"headline": SECRET, "hold_seconds": 30}, headers=eddie.headers
        )
        assert held.status_code == 202, held.text
        # The newsroom sees it waiting, with when it goes out.
        note = await next_note(newsroom)
        assert (note["type"], note["previous_status"]) == ("entry.scheduled", None)
        assert note["entry"]["publish_at"] == held.json()["publish_at"]
        assert SECRET in note["html"]

        undone = await client.post(
            f"{ENTRIES}/{held.json()['id']}/cancel-publish", headers=eddie.headers
        )
        assert undone.status_code == 200, undone.text
        note = await next_note(newsroom)
        assert (note["type"], note["previous_status"]) == ("entry.draft_saved", "scheduled")
        assert note["entry"]["status"] == "draft" and "publish_at" not in note["entry"]
        # Nothing public changed: not the feeds, the page or the list.
        assert await public_texts(server) == before

        # The next thing any public reader gets is the next publish, seq 2.
        second = await publish_entry(client, headline="Turnout up")
        seen_ws = await next_message(public_ws)
        seen_sse = await public_sse.next()
        assert (seen_ws["seq"], seen_ws["entry"]["id"]) == (2, second["id"])
        assert (seen_sse.id, seen_sse.data["entry"]["id"]) == ("2", second["id"])
        seen_newsroom = await newsroom.next()
        assert (seen_newsroom.id, seen_newsroom.data["entry"]["id"]) == ("2", second["id"])

    log = await read_log(client, SLUG)
    assert [(event["seq"], event["entry"]["id"]) for event in log] == [
        (1, first["id"]), (2, second["id"]),
    ]  # fmt: skip
    arrivals = await asyncio.to_thread(receiver.wait_for_accepted, 2)
    assert [arrival.seq for arrival in receiver.arrivals] == [1, 2]
    for text in [json.dumps(log), *await public_texts(server)] + [
        arrival.body.decode() for arrival in arrivals
    ]:
        assert SECRET not in text


async def test_a_hold_that_runs_out_is_published_once_at_its_due_time_with_one_seq(
    server: LiveServer, receiver: Receiver, secret: str
) -> None:
    client = server.client
    await create_blog(client)
    hook = {"url": receiver.url, "secret": secret}
    assert (
        await client.post(f"/api/v1/blogs/{SLUG}/webhooks", json=hook, headers=ADMIN)
    ).is_success
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as public_ws:
        assert await next_message(public_ws) == {"type": "hello", "seq": 0}
        held = await client.post(
            ENTRIES, json={"headline": "Polls close", "hold_seconds": 1}, headers=ADMIN
        )
        assert held.status_code == 202, held.text
        due = moment(held.json()["publish_at"])

        published = await next_message(public_ws)
        arrived = datetime.now(UTC)
        assert (published["seq"], published["type"]) == (1, "entry.created")
        assert published["entry"]["id"] == held.json()["id"]
        assert due <= arrived and due <= moment(published["entry"]["published_at"])
        # Published once: the next event is the next publish.
        marker = await publish_entry(client, headline="Turnout up")
        following = await next_message(public_ws)
        assert (following["seq"], following["entry"]["id"]) == (2, marker["id"])

    log = await read_log(client, SLUG)
    assert [(event["seq"], event["entry"]["id"]) for event in log] == [
        (1, held.json()["id"]), (2, marker["id"]),
    ]  # fmt: skip
    await asyncio.to_thread(receiver.wait_for_accepted, 2)
    assert [arrival.seq for arrival in receiver.arrivals] == [1, 2]
    assert receiver.arrivals[0].event == log[0]
