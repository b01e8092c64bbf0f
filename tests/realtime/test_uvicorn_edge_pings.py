"""A reader that pings and never reads is dropped at its buffer limit, not queued for ever."""

import asyncio
import base64
import json
import os
import socket
import struct

from websockets.asyncio.client import connect

from app.schemas import BlogCreate, EntryCreate
from tests.support.servers import live_server, served_settings

SLUG = "flood-watch"
LIMIT = 64 * 1024
PAYLOAD = b"p" * 125  # the largest control frame payload


def masked_ping() -> bytes:
    mask = os.urandom(4)
    body = bytes(byte ^ mask[index % 4] for index, byte in enumerate(PAYLOAD))
    return struct.pack("!BB", 0x89, 0x80 | len(PAYLOAD)) + mask + body


def flood(port: int, most_bytes: int) -> int:
    """Open a stream, then send pings without ever reading; the bytes sent before the
    server dropped the connection (or `most_bytes` if it never did)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/v1/blogs/{SLUG}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    frames = masked_ping() * 512
    sent = 0
    sock.settimeout(10)
    try:
        while sent < most_bytes:
            sock.sendall(frames)
            sent += len(frames)
    except OSError:  # reset by the server
        return sent
    finally:
        sock.close()
    return sent


async def test_a_reader_flooding_pings_without_reading_is_dropped_and_others_keep_receiving(
    database_url: str,
) -> None:
    settings = served_settings(database_url, reader_buffer_bytes=LIMIT)
    async with live_server(settings) as server:
        services = server.app.state.services
        await services.publisher.create_blog(BlogCreate(slug=SLUG, title="Flood watch"))
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as polite:
            assert json.loads(await polite.recv())["type"] == "hello"

            most = 200 * 1024 * 1024
            sent = await asyncio.to_thread(flood, server.port, most)

            # Dropped once its pongs passed the limit (plus what the kernels buffer), long
            # before the flood was over; queued pongs would have let it send all of it.
            assert sent < most
            await services.publisher.create_entry(SLUG, EntryCreate(body="<p>Still here.</p>"))
            assert json.loads(await polite.recv())["seq"] == 1
