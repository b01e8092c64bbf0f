"""What a connection may cost before it is a request, over real sockets to a real server.

Oversized request lines and headers are refused as they arrive (414, 431), heads and
bodies that never complete are timed out (408), and past the connection cap new
connections get 503 — while readers already connected keep receiving.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.config import Settings
from app.schemas import BlogCreate, EntryCreate
from tests.support.clients import read_metrics
from tests.support.factories import ADMIN_TOKEN
from tests.support.servers import LiveServer, live_server, served_settings

SLUG = "storm-desk"
HEAD_LIMIT = 8 * 1024


@pytest.fixture
def settings(database_url: str) -> Settings:
    return served_settings(
        database_url,
        max_request_head_bytes=HEAD_LIMIT,
        request_head_seconds=1.0,
        request_body_seconds=1.0,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(settings) as running:
        await running.app.state.services.publisher.create_blog(
            BlogCreate(slug=SLUG, title="Storm desk")
        )
        yield running


class RawClient:
    """One TCP connection that writes what a test says and reads what the server answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # Everything the server sends until it ends its side: its answer.
        self.reading = asyncio.ensure_future(reader.read())

    @classmethod
    async def open(cls, server: LiveServer) -> "RawClient":
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        client = cls(reader, writer)
        OPEN.append(client)
        return client

    async def send(self, data: bytes) -> bool:
        """Write, and say whether the server may still be reading (it has not answered)."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        await asyncio.sleep(0)  # let an answer already received reach `reading`
        return not self.reading.done()

    async def send_until_answered(
        self, first: bytes, filler: bytes, *, pause: float = 0.0, most: int = 4 << 20
    ) -> int:
        """Send `first`, then `filler` over and over until the server answers; bytes sent."""
        sent = len(first)
        still = await self.send(first)
        while still and sent < most:
            if pause:
                await asyncio.sleep(pause)
            still = await self.send(filler)
            sent += len(filler)
        return sent

    async def answer(self, timeout: float = 10.0) -> tuple[int, dict, bytes]:
        """The status, JSON body and head of the server's answer."""
        async with asyncio.timeout(timeout):
            raw = await self.reading
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), json.loads(body), head

    async def close(self) -> None:
        self.reading.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


# Every raw connection a test opened, closed when it ends.
OPEN: list[RawClient] = []


@pytest.fixture(autouse=True)
async def close_raw_clients() -> AsyncIterator[None]:
    yield
    while OPEN:
        await OPEN.pop().close()


async def test_a_request_line_past_the_limit_is_refused_414_while_it_arrives(
    server: LiveServer,
) -> None:
    client = await RawClient.open(server)
    sent = await client.send_until_answered(b"GET /api/v1/blogs?x=", b"a" * 4096)

    status, body, _head = await client.answer()

    assert status == 414
    assert body["error"]["code"] == "url_too_long"
    # Refused as it arrived, not after megabytes were buffered.
    assert sent < HEAD_LIMIT + 1024 * 1024
    assert (await server.client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/blogs", f"/api/v1/blogs/{SLUG}/ws"])
async def test_headers_past_the_limit_are_refused_431_websocket_handshakes_too(
    server: LiveServer, path: str
) -> None:
    client = await RawClient.open(server)
    upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\n" if path.endswith("/ws") else b""
    first = b"GET %s HTTP/1.1\r\nHost: x\r\n%s" % (path.encode(), upgrade)
    await client.send_until_answered(first, b"X-Pad: " + b"a" * 4000 + b"\r\n")

    status, body, _head = await client.answer()

    assert status == 431
    assert body["error"]["code"] == "headers_too_large"


async def test_a_body_larger_than_the_head_limit_arriving_with_its_head_is_served(
    server: LiveServer,
) -> None:
    body = json.dumps({"body": "<p>" + "Polling stations report queues. " * 1500 + "</p>"})
    assert len(body) > 4 * HEAD_LIMIT
    client = await RawClient.open(server)
    head = (
        f"POST /api/v1/blogs/{SLUG}/entries HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    await client.send((head + body).encode())  # one write: head and body in the same reads

    status, created, _head = await client.answer()

    assert status == 201
    assert created["id"] == 1


async def test_a_head_pipelined_behind_a_streaming_answer_is_bounded_too(
    server: LiveServer,
) -> None:
    client = await RawClient.open(server)
    await client.send(f"GET /api/v1/blogs/{SLUG}/sse HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    # The stream is open (its answer never ends); now an endless second request head.
    sent = await client.send_until_answered(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Pad: " + b"a" * 4000 + b"\r\n"
    )

    assert sent < HEAD_LIMIT + 1024 * 1024  # closed as it arrived, not buffered
    assert (await server.client.get("/healthz")).status_code == 200


async def test_a_head_under_the_limit_is_served_as_before(server: LiveServer) -> None:
    padding = {"X-Pad": "a" * (HEAD_LIMIT // 2)}
    response = await server.client.get(f"/api/v1/blogs/{SLUG}", headers=padding)
    assert response.status_code == 200


async def test_trickling_heads_are_timed_out_while_readers_keep_receiving(
    server: LiveServer,
) -> None:
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as reader:
        assert json.loads(await reader.recv())["type"] == "hello"
        tricklers = [await RawClient.open(server) for _ in range(30)]

        async def trickle(client: RawClient) -> int:
            """One header line every 0.2 s, well inside any per-read timeout: a slowloris."""
            first = b"GET /api/v1/blogs HTTP/1.1\r\nHost: x\r\n"
            await client.send_until_answered(first, b"X-a: b\r\n", pause=0.2, most=4096)
            status, body, _head = await client.answer()
            assert body["error"]["code"] == "request_timeout"
            return status

        trickling = [asyncio.create_task(trickle(client)) for client in tricklers]
        # Meanwhile the server serves everyone else.
        assert (await server.client.get("/healthz")).status_code == 200
        await server.app.state.services.publisher.create_entry(
            SLUG, EntryCreate(body="<p>The river crested at dawn.</p>")
        )
        assert json.loads(await reader.recv())["seq"] == 1

        assert await asyncio.gather(*trickling) == [408] * 30


async def test_a_connection_that_never_sends_is_closed_after_the_head_deadline(
    server: LiveServer,
) -> None:
    silent = await RawClient.open(server)
    status, body, _head = await silent.answer()
    assert (status, body["error"]["code"]) == (408, "request_timeout")
    samples = await read_metrics(server.client)
    assert samples['bulletin_connection_refusals_total{reason="request_timeout"}'] == 1
    assert samples['bulletin_connection_refusals_total{reason="server_busy"}'] == 0


async def test_a_body_that_stops_arriving_is_timed_out_and_nothing_is_written(
    server: LiveServer,
) -> None:
    client = await RawClient.open(server)
    head = (
        b"POST /api/v1/blogs/%s/entries HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n" % (SLUG.encode(), ADMIN_TOKEN.encode())
    )
    assert await client.send(head + b'{"body": "<p>half')

    status, body, _head = await client.answer()

    assert (status, body["error"]["code"]) == (408, "request_timeout")
    log = (await server.client.get(f"/api/v1/blogs/{SLUG}/events?since=0")).json()
    assert log["items"] == []


async def test_past_the_connection_cap_new_connections_get_503_and_readers_keep_receiving(
    database_url: str,
) -> None:
    settings = served_settings(database_url, request_head_seconds=30.0, max_connections=4)
    async with live_server(settings) as server:
        services = server.app.state.services
        await services.publisher.create_blog(BlogCreate(slug=SLUG, title="Storm desk"))
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as reader:
            assert json.loads(await reader.recv())["type"] == "hello"
            # The reader and the test's own keep-alive client hold two; two idle make four.
            await server.client.get("/healthz")
            idle = [await RawClient.open(server) for _ in range(2)]

            refused = await RawClient.open(server)
            status, body, head = await refused.answer()
            assert (status, body["error"]["code"]) == (503, "server_busy")
            assert b"retry-after: 1" in head.lower()
            samples = await read_metrics(server.client)
            assert samples['bulletin_connection_refusals_total{reason="server_busy"}'] == 1

            await services.publisher.create_entry(SLUG, EntryCreate(body="<p>Still live.</p>"))
            assert json.loads(await reader.recv())["seq"] == 1

            await idle[0].close()
            # Once the server has noticed that close, a new connection is served again.
            deadline = time.monotonic() + 10
            while True:
                retry = await RawClient.open(server)
                await retry.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status, _body, _head = await retry.answer()
                if status == 200 or time.monotonic() > deadline:
                    break
                await retry.close()
                await asyncio.sleep(0.05)
            assert status == 200


async def test_readers_never_take_the_connections_a_publish_needs(database_url: str) -> None:
    # A cap of 20 keeps one connection (a twentieth) from streams: readers fill 19.
    settings = served_settings(database_url, request_head_seconds=30.0, max_connections=20)
    assert settings.stream_cap == 19
    async with live_server(settings) as server:
        services = server.app.state.services
        await services.publisher.create_blog(BlogCreate(slug=SLUG, title="Storm desk"))
        await server.client.get("/healthz")  # the test's keep-alive client holds one
        async with contextlib.AsyncExitStack() as readers:
            streams = [
                await readers.enter_async_context(connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws"))
                for _ in range(18)
            ]
            for stream in streams:
                assert json.loads(await stream.recv())["type"] == "hello"

            # The twentieth connection is kept for what is not a stream: a publish gets in,
            # and out to every reader.
            publish = await RawClient.open(server)
            entry = b'{"body": "<p>Still publishing.</p>"}'
            await publish.send(
                b"POST /api/v1/blogs/%s/entries HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s"
                % (SLUG.encode(), ADMIN_TOKEN.encode(), len(entry), entry)
            )
            status, body, _head = await publish.answer()
            assert status == 201, body
            for stream in streams:
                assert json.loads(await stream.recv())["seq"] == 1

            # A nineteenth stream may not have it, over WebSocket or SSE.
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws")
            assert refused.value.response.status_code == 503
            assert json.loads(refused.value.response.body)["error"]["code"] == "server_busy"
            sse = await RawClient.open(server)
            await sse.send(
                b"GET /api/v1/blogs/%s/sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                % SLUG.encode()
            )
            status, body, _head = await sse.answer()
            assert (status, body["error"]["code"]) == (503, "server_busy")
        samples = await read_metrics(server.client)
        assert samples['bulletin_connection_refusals_total{reason="server_busy"}'] == 2
