"""The stream edge against a real server: events, resumes, pings, refusals and close codes,
with the `websockets` client and with raw sockets for what a well-behaved client never sends
(the edge it replaced, removed on 2026-12-04, passed each of these too)."""

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.config import Settings
from app.main import create_app
from app.realtime.lean_edge import DeflatedLeanStream
from app.realtime.uvicorn_edge import StreamProtocol
from app.serving import removed_setting_warnings, uvicorn_options
from tests.support.clients import StalledReader, next_message, read_metrics, slow_readers_closed
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN_TOKEN, SLUG, create_blog, publish_entry
from tests.support.servers import LiveServer, live_server, served_settings
from tests.support.waiting import eventually

PATH = f"/api/v1/blogs/{SLUG}/ws"
LONG = "<p>" + "Turnout figures from every ward, as the counts come in. " * 40 + "</p>"
PING_SECONDS = 0.3
EDGE_MODULES = ("app.realtime.lean_edge", "app.realtime.uvicorn_edge")


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    reserved: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """A frame as a client sends it (masked), or broken in one chosen way."""
    first = (0x80 if fin else 0) | reserved | opcode
    size = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))


class RawReader(StalledReader):
    """A handshaken raw socket that reads and sends frames when the test says so."""

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def next_frame(self, timeout: float = 10) -> tuple[int, bytes] | None:
        """The next frame from the server (opcode, payload), or None at end of stream."""
        self.sock.settimeout(timeout)
        return self._next_frame()

    def next_control_frame(self, timeout: float = 10) -> tuple[int, bytes] | None:
        """The next ping, pong or close, past any messages."""
        while True:
            frame = self.next_frame(timeout)
            if frame is None or frame[0] >= 0x8:
                return frame

    def close_code_then_end(self, timeout: float = 10) -> tuple[int | None, bool]:
        """The code of the server's close frame, and whether the server then ended the
        connection (rather than leaving it open)."""
        frame = self.next_control_frame(timeout)
        while frame is not None and frame[0] != 0x8:
            frame = self.next_control_frame(timeout)
        if frame is None:
            return None, True
        code = struct.unpack("!H", frame[1][:2])[0] if len(frame[1]) >= 2 else None
        try:
            return code, self.next_frame(timeout) is None
        except OSError:
            return code, True


async def raw_reader(server: LiveServer, path: str = PATH) -> RawReader:
    """A raw reader past its hello (its blocking handshake runs in a thread: the server
    runs on this loop)."""
    reader = await asyncio.to_thread(RawReader, server.port, path)

    def first_message() -> tuple[int, bytes] | None:
        # The server's first ping may come before the hello: the pings here are fast.
        while True:
            frame = reader.next_frame()
            if frame is None or frame[0] not in (0x9, 0xA):
                return frame

    try:
        frame = await asyncio.to_thread(first_message)
        assert frame is not None and json.loads(frame[1])["type"] == "hello", frame
    except BaseException:
        reader.close()
        raise
    return reader


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)  # the edge is what is tested here


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    """A served app with a blog and fast pings (SQLite)."""
    async with live_server(served_settings(database_url), ping_seconds=PING_SECONDS) as running:
        await create_blog(running.client)
        yield running


# --- events and resumes, on both databases and brokers -------------------------------


async def test_a_reader_gets_hello_events_and_resumes_by_since(stack_settings: Settings) -> None:
    async with live_server(stack_settings) as server:
        await create_blog(server.client)
        async with connect(f"{server.ws}{PATH}") as ws:
            assert await next_message(ws) == {"type": "hello", "seq": 0}
            for number in range(3):
                await publish_entry(server.client, body=f"<p>Ward {number} declared.</p>")
            assert [(await next_message(ws))["seq"] for _ in range(3)] == [1, 2, 3]
        async with connect(f"{server.ws}{PATH}?since=1") as resumed:
            await publish_entry(server.client, body="<p>Recount ordered.</p>")
            assert [(await next_message(resumed))["seq"] for _ in range(3)] == [2, 3, 4]


async def test_a_reader_that_stops_reading_is_closed_with_resume_while_another_keeps_up(
    stack_settings: Settings,
) -> None:
    small = stack_settings.model_copy(update={"reader_buffer_bytes": 16_384})
    async with live_server(small) as server:
        await create_blog(server.client)
        stalled = await asyncio.to_thread(StalledReader, server.port, f"{PATH}?since=0")
        async with connect(f"{server.ws}{PATH}?since=0", max_size=None) as keeping_up:
            published = 0
            while await slow_readers_closed(server.client) == 0:
                assert published < 300, "the stalled reader was never cut off"
                await publish_entry(server.client, body=LONG)
                published += 1
                assert (await next_message(keeping_up))["seq"] == published
            seqs, code = await asyncio.to_thread(stalled.read_events_until_close)
            stalled.close()
            assert code == 4000
            assert seqs == list(range(1, len(seqs) + 1))
            await publish_entry(server.client, body="<p>After the cut-off.</p>")
            assert (await next_message(keeping_up))["seq"] == published + 1


# --- pings and pongs --------------------------------------------------------------


async def test_the_server_pings_and_a_reader_that_answers_stays_and_receives(
    server: LiveServer,
) -> None:
    reader = await raw_reader(server)
    try:
        for _ in range(3):
            frame = await asyncio.to_thread(reader.next_control_frame)
            assert frame is not None and frame[0] == 0x9, frame
            reader.send(client_frame(0xA, frame[1]))
        await publish_entry(server.client, body="<p>Still counting.</p>")
        frame = await asyncio.to_thread(reader.next_frame)
        while frame is not None and frame[0] == 0x9:
            reader.send(client_frame(0xA, frame[1]))
            frame = await asyncio.to_thread(reader.next_frame)
        assert frame is not None and frame[0] == 0x1
        assert json.loads(frame[1])["seq"] == 1
    finally:
        reader.close()


async def test_a_reader_that_stops_answering_pings_is_closed_and_forgotten(
    server: LiveServer,
) -> None:
    silent = await raw_reader(server)
    try:
        code, ended = await asyncio.to_thread(silent.close_code_then_end)
    finally:
        silent.close()
    assert (code, ended) == (1011, True)
    metrics = await eventually(
        lambda: read_metrics(server.client),
        10,
        "the server to count no readers",
        holds=lambda m: m.get('bulletin_readers{form="websocket_frame"}') == 0,
    )
    assert metrics['bulletin_readers{form="websocket_frame"}'] == 0


async def test_a_readers_ping_gets_a_pong_with_its_payload(server: LiveServer) -> None:
    reader = await raw_reader(server)
    try:
        reader.send(client_frame(0x9, b"anyone there?"))
        frame = await asyncio.to_thread(reader.next_control_frame)
        while frame is not None and frame[0] == 0x9:  # the server's own ping crossed ours
            frame = await asyncio.to_thread(reader.next_control_frame)
    finally:
        reader.close()
    assert frame == (0xA, b"anyone there?")


# --- what a reader must not send --------------------------------------------------


@pytest.mark.parametrize("message", ["a text message", b"a binary message"], ids=["text", "bytes"])
async def test_a_data_message_from_a_reader_closes_it_with_readers_do_not_send(
    server: LiveServer, message: str | bytes
) -> None:
    async with connect(f"{server.ws}{PATH}") as rude, connect(f"{server.ws}{PATH}") as polite:
        await next_message(rude)
        await next_message(polite)
        await rude.send(message)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):  # a stream that let it pass would never close
                while True:
                    await rude.recv()
        assert rude.close_code == 4501
        await publish_entry(server.client, body="<p>Others still read.</p>")
        assert (await next_message(polite))["seq"] == 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(0x1, b"not masked", masked=False), 1002),
        (client_frame(0x9, b"", reserved=0x40), 1002),
        (client_frame(0x3, b"no such opcode"), 1002),
        (client_frame(0xB, b"no such control opcode"), 1002),
        (client_frame(0x0, b"continues nothing"), 1002),
        (client_frame(0x9, b"p" * 126), 1002),
        (client_frame(0x9, b"half a ping", fin=False), 1002),
        (client_frame(0x8, b"\x03"), 1002),
        (client_frame(0x8, struct.pack("!H", 999)), 1002),
        (client_frame(0x8, struct.pack("!H", 1000) + b"\xff\xfe"), 1007),
        (client_frame(0x1, length=100_000), 1009),
        (client_frame(0x2, b"b" * 5000), 1009),
    ],
    ids=[
        "unmasked",
        "reserved-bit",
        "bad-opcode",
        "bad-control-opcode",
        "stray-continuation",
        "long-ping",
        "fragmented-ping",
        "short-close",
        "bad-close-code",
        "close-reason-not-utf8",
        "oversize-header",
        "oversize-frame",
    ],
)
async def test_a_frame_breaking_the_protocol_closes_the_reader_with_its_code(
    server: LiveServer, frame: bytes, code: int
) -> None:
    reader = await raw_reader(server)
    try:
        reader.send(frame)
        closed = await asyncio.to_thread(reader.close_code_then_end)
    finally:
        reader.close()
    assert closed == (code, True)
    async with connect(f"{server.ws}{PATH}") as polite:
        assert (await next_message(polite))["type"] == "hello"


async def test_a_readers_close_is_answered_with_the_same_code_and_the_connection_ends(
    server: LiveServer,
) -> None:
    reader = await raw_reader(server)
    try:
        reader.send(client_frame(0x8, struct.pack("!H", 1000) + b"tab closed"))
        closed = await asyncio.to_thread(reader.close_code_then_end)
    finally:
        reader.close()
    assert closed == (1000, True)
    await eventually(
        lambda: read_metrics(server.client),
        10,
        "the server to count no readers",
        holds=lambda m: m.get('bulletin_readers{form="websocket_frame"}') == 0,
    )


async def test_the_websockets_client_closes_cleanly(server: LiveServer) -> None:
    async with connect(f"{server.ws}{PATH}") as ws:
        await next_message(ws)
    assert ws.close_code == 1000
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


async def test_stopping_the_server_closes_readers_with_the_restart_code(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(live_server(served_settings(database_url)))
        await create_blog(server.client)
        ws = await connect(f"{server.ws}{PATH}")
        await next_message(ws)
    await ws.wait_closed()
    assert ws.close_code == 1012


# --- refusals and limits at the handshake -----------------------------------------


async def test_a_page_on_another_origin_is_refused_with_a_json_403(database_url: str) -> None:
    settings = served_settings(database_url, stream_origins=["https://partner.example"])
    async with live_server(settings) as server:
        await create_blog(server.client)
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{server.ws}{PATH}", origin="https://elsewhere.example")  # type: ignore[arg-type]
        response = refused.value.response
        assert response.status_code == 403
        assert json.loads(response.body)["error"]["code"] == "origin_not_allowed"
        async with connect(f"{server.ws}{PATH}", origin="https://partner.example") as ws:  # type: ignore[arg-type]
            assert (await next_message(ws))["type"] == "hello"


async def test_an_address_past_its_open_streams_is_refused_until_one_closes(
    database_url: str,
) -> None:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        max_streams_per_ip=1,
        rate_limit_stream_connects="1000/minute",
    )
    async with live_server(settings) as server:
        await create_blog(server.client)
        async with connect(f"{server.ws}{PATH}") as first:
            await next_message(first)
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"{server.ws}{PATH}")
            assert refused.value.response.status_code == 429
            assert json.loads(refused.value.response.body)["error"]["code"] == "rate_limited"
        # The closed stream gave its slot back.
        await eventually(
            lambda: server.app.state.services.rate_limits.slots.open,
            10,
            "the slot to be freed",
            holds=lambda open_now: open_now == {},
        )
        async with connect(f"{server.ws}{PATH}") as again:
            assert (await next_message(again))["type"] == "hello"


# --- what a lean stream costs -----------------------------------------------------


async def open_readers(server: LiveServer, count: int, stack: AsyncExitStack) -> None:
    for _ in range(count):
        # No client-side pings: only the server's own timers are counted.
        ws: ClientConnection = await stack.enter_async_context(
            connect(f"{server.ws}{PATH}", ping_interval=None)
        )
        await next_message(ws)


async def test_lean_streams_add_no_timer_and_hold_no_websockets_protocol(database_url: str) -> None:
    loop = asyncio.get_running_loop()

    def edge_timers() -> list[str]:
        """The timers the loop holds for stream connections (the hub's are not counted)."""
        pending = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        owners = [type(getattr(h._callback, "__self__", None)) for h in pending]
        return sorted(
            owner.__qualname__
            for owner in owners
            if owner.__module__ in EDGE_MODULES or owner.__module__.startswith("uvicorn.protocols.")
        )

    async with (
        live_server(served_settings(database_url)) as server,
        AsyncExitStack() as stack,
    ):
        await create_blog(server.client)
        await open_readers(server, 1, stack)
        with_one = edge_timers()
        await open_readers(server, 30, stack)
        # One sweep for every stream, not a ping timer each.
        assert edge_timers() == with_one == ["Sweep"]
        channel = server.app.state.services.hub.channel(SLUG)
        readers = [r for group in channel.readers.values() for r in group.values()]
        assert len(readers) == 31
        # Readers offering deflate (these do, as browsers) take the subclass that says so.
        assert all(type(reader) is DeflatedLeanStream for reader in readers)


# --- the edge bulletin serve runs --------------------------------------------------


def test_bulletin_serve_runs_the_stream_edge_and_says_the_old_choice_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = uvicorn.Config(create_app(Settings()), **uvicorn_options(Settings()))
    config.load()
    assert config.ws_protocol_class is StreamProtocol
    # An environment kept from a release that could choose the other edge still starts, on
    # this edge, and the operator is told the setting is no longer read.
    monkeypatch.setenv("BULLETIN_STREAM_EDGE", "websockets")
    assert removed_setting_warnings(os.environ) == [
        "BULLETIN_STREAM_EDGE is no longer read: every stream now runs on the lean edge; unset it"
    ]
    kept = uvicorn.Config(create_app(Settings()), **uvicorn_options(Settings()))
    kept.load()
    assert kept.ws_protocol_class is StreamProtocol
    monkeypatch.delenv("BULLETIN_STREAM_EDGE")
    assert removed_setting_warnings(os.environ) == []
