"""Idle streams stay alive through proxies, and dead peers are found and dropped."""

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from tests.realtime.conftest import EDGES, LiveServer, live_server
from tests.realtime.test_streams import SLUG, create_blog, publish
from tests.support.clients import StalledReader


@pytest.fixture
def chatty(settings: Settings) -> Settings:
    return settings.model_copy(update={"heartbeat_seconds": 0.3})


async def test_an_idle_websocket_gets_heartbeats_carrying_the_head(chatty: Settings) -> None:
    async with live_server(chatty) as server:
        await create_blog(server)
        await publish(server, "one")
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws:
            assert json.loads(await ws.recv()) == {"type": "hello", "seq": 1}
            heartbeat = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert heartbeat == {"type": "heartbeat", "seq": 1}


async def test_an_idle_sse_stream_gets_heartbeat_events_carrying_the_head(
    chatty: Settings,
) -> None:
    async with live_server(chatty) as server:
        await create_blog(server)
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
async def test_a_peer_that_stops_answering_pings_is_dropped(settings: Settings, edge: str) -> None:
    async with live_server(settings, EDGES[edge], ping_seconds=0.3) as server:
        await create_blog(server)
        path = f"/api/v1/blogs/{SLUG}/ws"
        silent = await asyncio.to_thread(StalledReader, server.port, path)
        try:
            # It reads but never answers a ping: the server gives up on it and says why.
            _seqs, code = await asyncio.to_thread(silent.read_events_until_close, 10)
        finally:
            silent.close()
        assert code == 1011
        # ...and stops counting it as a reader (the hub lets go of it).
        await asyncio.wait_for(no_readers(server), 10)


async def no_readers(server: LiveServer) -> None:
    while True:
        metrics = (await server.client.get("/metrics")).text
        if all(
            f'bulletin_readers{{form="{f}"}} 0.0' in metrics for f in ("text", "websocket_frame")
        ):
            return
        await asyncio.sleep(0.02)
