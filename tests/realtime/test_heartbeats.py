"""Idle streams stay alive through proxies, and dead peers are found and dropped."""

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from tests.support.clients import StalledReader, read_metrics
from tests.support.factories import SLUG, create_blog, publish_entry
from tests.support.servers import EDGES, LiveServer, live_server
from tests.support.waiting import eventually


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
