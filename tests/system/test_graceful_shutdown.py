"""SIGTERM to `bulletin serve` ends every stream cleanly first, then stops: no stream is cut
mid-body, and the log carries no traceback for them."""

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.databases import fresh_database
from tests.support.factories import ADMIN
from tests.support.servers import ServerProcess, serve_environment

SLUG = "night-shift"


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, serve: Callable[..., ServerProcess]
) -> ServerProcess:
    return serve(serve_environment(fresh_database("sqlite", request, tmp_path)))


async def test_sigterm_ends_sse_and_websocket_streams_cleanly_before_the_server_stops(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
        created = await client.post(
            "/api/v1/blogs", json={"slug": SLUG, "title": "Night shift"}, headers=ADMIN
        )
        assert created.status_code == 201
        opened = [asyncio.Event() for _ in range(3)]

        async def read_sse(ready: asyncio.Event) -> list[str]:
            lines = []
            async with client.stream("GET", f"/api/v1/blogs/{SLUG}/sse") as response:
                async for line in response.aiter_lines():  # raises if the body is cut
                    lines.append(line)
                    if line.startswith("event: hello"):
                        ready.set()
            return lines

        streams = [asyncio.create_task(read_sse(ready)) for ready in opened]
        websocket = await connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws")
        await websocket.recv()  # hello
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in opened)), 10)

        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGTERM)
        ended = await asyncio.wait_for(asyncio.gather(*streams), 15)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(websocket.recv(), 15)
        await asyncio.to_thread(server.process.wait, 15)

    assert all(any(line.startswith("event: hello") for line in lines) for lines in ended)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert "timeout graceful shutdown exceeded" not in log
