"""Reading a blog's stream over WebSocket and SSE: hello, events, resuming, refusals; idle
streams stay alive through proxies, and dead peers are found and dropped."""

import asyncio
import json
import os

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from tests.support.clients import StalledReader, next_message, read_metrics
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry
from tests.support.servers import EDGES, LiveServer, live_server
from tests.support.waiting import eventually


async def test_a_reader_gets_hello_then_each_new_entry_with_its_html(server: LiveServer) -> None:
    await create_blog(server.client)
    await publish_entry(server.client, body="<p>before</p>")
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws:
        assert await next_message(ws) == {"type": "hello", "seq": 1}
        entry = await publish_entry(server.client, body="<p>Polls close</p>")
        event = await next_message(ws)
    assert event["seq"] == 2
    assert event["type"] == "entry.created"
    assert event["entry"] == entry
    assert "<p>Polls close</p>" in event["html"]


async def test_resuming_with_since_replays_then_continues_without_gap_or_repeat(
    server: LiveServer,
) -> None:
    await create_blog(server.client)
    for number in range(5):
        await publish_entry(server.client, body=f"<p>early {number}</p>")

    async def keep_publishing() -> None:
        for number in range(20):
            await publish_entry(server.client, body=f"<p>late {number}</p>")

    writer = asyncio.create_task(keep_publishing())
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=2") as ws:
        seqs = [(await next_message(ws))["seq"] for _ in range(23)]
    await writer
    assert seqs == list(range(3, 26))


async def test_edits_deletes_and_pins_arrive_as_events(server: LiveServer) -> None:
    await create_blog(server.client)
    entry = await publish_entry(server.client, body="<p>draft wording</p>")
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=1") as ws:
        url = f"/api/v1/blogs/{SLUG}/entries/{entry['id']}"
        await server.client.patch(url, json={"body": "<p>final</p>"}, headers=ADMIN)
        await server.client.patch(url, json={"pinned": True}, headers=ADMIN)
        await server.client.delete(url, headers=ADMIN)
        await server.client.patch(f"/api/v1/blogs/{SLUG}", json={"status": "ended"}, headers=ADMIN)
        events = [await next_message(ws) for _ in range(5)]
    assert [e["type"] for e in events] == [
        "entry.updated",
        "entry.pinned",
        "entry.deleted",
        "entry.redacted",
        "blog.ended",
    ]
    assert "<p>final</p>" in events[0]["html"]
    assert events[2]["entry"] == {
        "id": entry["id"],
        "blog": SLUG,
        "status": "deleted",
        "deleted_at": events[2]["entry"]["deleted_at"],
    }
    assert events[3]["redacted_seqs"] == [1, 2, 3]
    assert events[4]["details"]["status"] == "ended"


async def test_sse_streams_events_with_seq_ids_and_resumes_from_last_event_id(
    server: LiveServer,
) -> None:
    await create_blog(server.client)
    first = await publish_entry(server.client, body="<p>one</p>")
    url = f"{server.http}/api/v1/blogs/{SLUG}/sse"
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", url, headers={"Last-Event-ID": "0"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        messages = []
        async for line in lines:
            if line.startswith("id: "):
                messages.append({"id": line[4:]})
            elif line.startswith(("event: ", "data: ")) and messages:
                key, value = line.split(": ", 1)
                messages[-1][key] = value
            if len(messages) == 1 and "data" in messages[0]:
                await publish_entry(server.client, body="<p>two</p>")
            if len(messages) == 2 and "data" in messages[1]:
                break
    assert [m["id"] for m in messages] == ["1", "2"]
    assert [m["event"] for m in messages] == ["entry.created", "entry.created"]
    assert json.loads(messages[0]["data"])["entry"] == first
    # `?since=` resumes the same way.
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{url}?since=1") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                assert line == "id: 2"
                break


async def test_unknown_blog_closes_the_websocket_with_a_reason(server: LiveServer) -> None:
    async with connect(f"{server.ws}/api/v1/blogs/nowhere/ws") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4504
    assert "nowhere" in ws.close_reason


@pytest.mark.parametrize(
    ("since", "code"), [("99", 4509), ("-1", 4500), ("abc", 4500), ("9" * 30, 4500)]
)
async def test_a_since_the_server_cannot_serve_closes_with_a_clear_code(
    server: LiveServer, since: str, code: int
) -> None:
    await create_blog(server.client)
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since={since}") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == code
    assert ws.close_reason


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?since=99", 409, "since_ahead_of_head"),
        ("?since=x", 400, "invalid_since"),
    ],
)
async def test_sse_refuses_a_since_it_cannot_serve_with_a_json_error(
    server: LiveServer, query: str, status: int, code: str
) -> None:
    await create_blog(server.client)
    response = await server.client.get(f"/api/v1/blogs/{SLUG}/sse{query}")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    missing = await server.client.get("/api/v1/blogs/nowhere/sse")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("junk", "close_code"),
    # Readers never send: a small message is refused by the stream, a large one by the
    # server's frame limit (ws_max_size in app/serving.py) before it is even read in full.
    # Random hex: still over the limit when the client compresses it (deflate agreed).
    [("x" * 100, 4501), (os.urandom(10_000).hex(), 1009)],
    ids=["small", "over-the-frame-limit"],
)
async def test_a_reader_that_sends_junk_is_closed_and_others_keep_receiving(
    server: LiveServer, junk: str, close_code: int
) -> None:
    await create_blog(server.client)
    async with (
        connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as rude,
        connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as polite,
    ):
        await next_message(rude)
        await next_message(polite)
        await rude.send(junk)
        with pytest.raises(ConnectionClosed):
            while True:
                await rude.recv()
        assert rude.close_code == close_code
        await publish_entry(server.client, body="<p>still here</p>")
        assert (await next_message(polite))["seq"] == 1


async def test_the_edge_writes_prebuilt_frames_and_asgi_servers_get_text(
    server: LiveServer, request: pytest.FixtureRequest
) -> None:
    await create_blog(server.client)
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws:
        await next_message(ws)
        metrics = await read_metrics(server.client)
    # The client offers permessage-deflate as browsers do. The edge agrees to it without
    # context takeover (one compressed frame per event for every such reader); nothing
    # else compresses per connection.
    expected_form, extensions = {
        "edge": (
            "websocket_deflated",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        "asgi": ("text", None),
    }[request.node.callspec.params["server"]]
    assert metrics[f'bulletin_readers{{form="{expected_form}"}}'] == 1.0
    assert ws.response.headers.get("Sec-WebSocket-Extensions") == extensions


# --- idle streams: heartbeats and pings ------------------------------------------


@pytest.fixture
def chatty(stack_settings: Settings) -> Settings:
    return stack_settings.model_copy(update={"heartbeat_seconds": 0.3})


async def test_an_idle_websocket_gets_heartbeats_carrying_the_head(chatty: Settings) -> None:
    async with live_server(chatty) as server:
        await create_blog(server.client)
        await publish_entry(server.client, body="<p>one</p>")
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws:
            assert json.loads(await ws.recv()) == {"type": "hello", "seq": 1}
            heartbeat = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert heartbeat == {"type": "heartbeat", "seq": 1}


async def test_an_idle_sse_stream_gets_heartbeat_events_carrying_the_head(
    chatty: Settings,
) -> None:
    async with live_server(chatty) as server:
        await create_blog(server.client)
        url = f"{server.http}/api/v1/blogs/{SLUG}/sse"
        async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as response:
            lines = response.aiter_lines()
            async for line in lines:
                if line == "event: heartbeat":
                    data = await anext(lines)
                    break
    # No id: a reconnecting EventSource resumes from the last real event, not a heartbeat.
    assert json.loads(data.removeprefix("data: ")) == {"type": "heartbeat", "seq": 0}


@pytest.mark.parametrize("edge", list(EDGES))
async def test_a_peer_that_stops_answering_pings_is_dropped(
    stack_settings: Settings, edge: str
) -> None:
    async with live_server(stack_settings, EDGES[edge], ping_seconds=0.3) as server:
        await create_blog(server.client)
        path = f"/api/v1/blogs/{SLUG}/ws"
        silent = await asyncio.to_thread(StalledReader, server.port, path)
        try:
            # It reads but never answers a ping: the server gives up on it and says why.
            _seqs, code = await asyncio.to_thread(silent.read_events_until_close, 10)
        finally:
            silent.close()
        assert code == 1011
        # ...and stops counting it as a reader (the hub lets go of it).
        await eventually(lambda: no_readers(server), 10, "the server to count no readers")


async def no_readers(server: LiveServer) -> bool:
    metrics = await read_metrics(server.client)
    return all(
        metrics.get(f'bulletin_readers{{form="{f}"}}') == 0 for f in ("text", "websocket_frame")
    )
