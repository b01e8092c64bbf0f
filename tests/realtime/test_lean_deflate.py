"""permessage-deflate on the lean edge: each event compressed once, one frame for every reader.

Readers here are raw sockets that offer deflate exactly as browsers do, so the test sees the
bytes on the wire: the compression bit, and frames that must inflate on their own.
"""

import asyncio
import base64
import json
import os
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.support.databases import fresh_database
from tests.support.factories import SLUG, create_blog, publish_entry
from tests.support.servers import LiveServer, live_server, served_settings

PATH = f"/api/v1/blogs/{SLUG}/ws"
BROWSERS_OFFER = "permessage-deflate; client_max_window_bits"
RESULTS = "<p>" + "Results from the northern wards show a swing to the challenger. " * 20 + "</p>"


class WireReader:
    """A blocking raw WebSocket client that offers `extensions` and reads frames whole,
    compression bit and all."""

    def __init__(self, port: int, extensions: str | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        self.sock.sendall(
            f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{offer}"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), lines[0]
        headers = dict(line.split(": ", 1) for line in lines[1:])
        self.agreed = headers.get("Sec-WebSocket-Extensions")

    def frame(self) -> bytes:
        """The next whole frame from the server, header included (server frames are unmasked)."""
        while True:
            end = self.frame_end()
            if end is not None:
                frame, self.buffer = self.buffer[:end], self.buffer[end:]
                return frame
            chunk = self.sock.recv(65536)
            assert chunk, "the server ended the connection"
            self.buffer += chunk

    def frame_end(self) -> int | None:
        """Where the first frame in the buffer ends, once it is all there (events here are
        under 64 KiB: a 7- or 16-bit length)."""
        if len(self.buffer) < 2:
            return None
        length, offset = self.buffer[1] & 0x7F, 2
        if length == 126:
            if len(self.buffer) < 4:
                return None
            length, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
        end = offset + length
        return end if len(self.buffer) >= end else None

    def message_frame(self) -> bytes:
        """The next data frame, past pings."""
        while True:
            frame = self.frame()
            if (frame[0] & 0x0F) in (0x1, 0x2, 0x8):
                return frame

    def send(self, first: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.sock.sendall(struct.pack("!BB", first, 0x80 | len(payload)) + mask + masked)

    def close(self) -> None:
        self.sock.close()


def payload_of(frame: bytes) -> bytes:
    length = frame[1] & 0x7F
    return frame[4:] if length == 126 else frame[2:]


def inflate_alone(frame: bytes) -> bytes:
    """A compressed frame inflated by a fresh decompressor: no earlier message is known."""
    assert frame[0] == 0xC1, f"not a compressed text frame: {frame[:2]!r}"
    return zlib.decompressobj(wbits=-15).decompress(payload_of(frame) + b"\x00\x00\xff\xff")


async def wire_reader(server: LiveServer, extensions: str | None) -> WireReader:
    """A reader past its hello (the blocking handshake runs in a thread)."""
    reader = await asyncio.to_thread(WireReader, server.port, extensions)
    hello = await asyncio.to_thread(reader.message_frame)
    assert hello[0] == 0x81 and json.loads(payload_of(hello))["type"] == "hello"
    return reader


def close_code(frame: bytes) -> int:
    assert frame[0] == 0x88, frame[:2]
    return int(struct.unpack("!H", payload_of(frame)[:2])[0])


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)  # framing is what is tested


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(served_settings(database_url)) as running:
        await create_blog(running.client)
        yield running


async def test_readers_offering_deflate_share_one_compressed_frame_per_event(
    server: LiveServer,
) -> None:
    first = await wire_reader(server, BROWSERS_OFFER)
    second = await wire_reader(server, BROWSERS_OFFER)
    plain = await wire_reader(server, None)
    try:
        assert first.agreed == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        )
        assert plain.agreed is None
        for number in range(2):
            await publish_entry(server.client, body=RESULTS.replace("northern", f"ward {number}"))
            frames = [await asyncio.to_thread(r.message_frame) for r in (first, second, plain)]
            # The same compressed bytes for both, each inflating alone, smaller than plain.
            assert frames[0] == frames[1]
            assert len(frames[0]) < len(frames[2]) / 2
            assert frames[2][0] == 0x81
            assert inflate_alone(frames[0]) == payload_of(frames[2])
            assert json.loads(payload_of(frames[2]))["seq"] == number + 1
    finally:
        for reader in (first, second, plain):
            reader.close()


async def test_a_browser_like_client_reads_the_compressed_events(server: LiveServer) -> None:
    # The websockets client offers deflate as browsers do, and inflates what it is sent.
    async with connect(f"{server.ws}{PATH}") as ws:
        assert json.loads(await ws.recv()) == {"type": "hello", "seq": 0}
        assert "server_no_context_takeover" in ws.response.headers["Sec-WebSocket-Extensions"]
        await publish_entry(server.client, body=RESULTS)
        await publish_entry(server.client, body=RESULTS.replace("challenger", "incumbent"))
        events = [json.loads(await ws.recv()) for _ in range(2)]
    assert [event["seq"] for event in events] == [1, 2]
    assert "incumbent" in events[1]["entry"]["body"]


async def test_a_compressed_message_is_refused_like_any_message_from_a_reader(
    server: LiveServer,
) -> None:
    reader = await wire_reader(server, BROWSERS_OFFER)
    try:
        compressor = zlib.compressobj(wbits=-15)
        message = compressor.compress(b'{"type":"hi"}') + compressor.flush(zlib.Z_SYNC_FLUSH)
        reader.send(0xC1, message[:-4])  # RSV1: compressed, as agreed
        assert close_code(await asyncio.to_thread(reader.message_frame)) == 4501
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("extensions", "first"),
    [
        (BROWSERS_OFFER, 0xC9),  # a compressed ping: control frames are never compressed
        (BROWSERS_OFFER, 0xA1),  # RSV2 on a message: no extension gives it a meaning
        (None, 0xC1),  # the compression bit, without deflate agreed
    ],
)
async def test_reserved_bits_deflate_does_not_allow_close_with_a_protocol_error(
    server: LiveServer, extensions: str | None, first: int
) -> None:
    reader = await wire_reader(server, extensions)
    try:
        reader.send(first, b"x")
        assert close_code(await asyncio.to_thread(reader.message_frame)) == 1002
    finally:
        reader.close()
