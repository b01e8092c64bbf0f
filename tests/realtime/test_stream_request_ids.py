"""A WebSocket stream has a request id, on each edge: the handshake's X-Request-ID when it is
well formed, else a new one; the handshake's answer echoes it, and the lines logged while the
stream is attached carry it."""

import asyncio
import logging
import re
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.logs import RequestIdFilter
from tests.support.factories import ADMIN, SLUG, create_blog
from tests.support.servers import LiveServer

REQUEST_ID = "desk-4c1e2b"


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())  # as a serving process's handlers do

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stream_lines() -> Iterator[Kept]:
    kept = Kept()
    logger = logging.getLogger("bulletin.streams")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(kept)
    yield kept
    logger.removeHandler(kept)
    logger.setLevel(level)


async def test_a_stream_s_request_id_is_echoed_and_carried_by_its_log_lines(
    server: LiveServer, stream_lines: Kept
) -> None:
    await create_blog(server.client)
    url = f"{server.ws}/api/v1/blogs/{SLUG}/ws"
    async with connect(url, additional_headers={"X-Request-ID": REQUEST_ID}) as named:
        assert named.response.headers["X-Request-ID"] == REQUEST_ID
    async with connect(url, additional_headers={"X-Request-ID": "no spaces\tallowed"}) as other:
        assert re.fullmatch(r"[0-9a-f]{32}", other.response.headers["X-Request-ID"])

    # A refused reader's line names its stream's request id.
    assert (
        await server.client.post(f"/api/v1/blogs/{SLUG}/streams-stop", headers=ADMIN)
    ).is_success
    async with connect(url, additional_headers={"X-Request-ID": REQUEST_ID}) as refused:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(refused.recv(), 10)
    lines = [r for r in stream_lines.records if r.getMessage().startswith("refused a reader")]
    assert [getattr(line, "request_id", None) for line in lines] == [REQUEST_ID]
