"""Many WebSocket readers in one test process, each recording the seqs it receives."""

import asyncio
import base64
import json
import os
import random
import socket
import struct

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake


class Reader:
    """Reads a blog's stream, reconnecting with `since` after a drop, recording every seq."""

    def __init__(self, ws_base: str, slug: str, since: int | None = None) -> None:
        self.url = f"{ws_base}/api/v1/blogs/{slug}/ws"
        self.seqs: list[int] = []
        self.since = since
        self.connections = 0
        self.connected = asyncio.Event()
        self.goal: int | None = None
        self.reached = asyncio.Event()

    def aim(self, goal: int) -> None:
        """Set `reached` once this reader has seq `goal`."""
        self.goal = goal
        if self.seqs and self.seqs[-1] >= goal:
            self.reached.set()
        else:
            self.reached.clear()

    async def run(self) -> None:
        while True:
            query = "" if self.since is None else f"?since={self.since}"
            try:
                async with connect(self.url + query, open_timeout=30) as ws:
                    self.connections += 1
                    self.connected.set()
                    async for raw in ws:
                        message = json.loads(raw)
                        if "seq" not in message or message["type"] in ("hello", "heartbeat"):
                            if message.get("type") == "hello":
                                self.since = message["seq"]
                            continue
                        self.seqs.append(message["seq"])
                        self.since = message["seq"]
                        if self.goal is not None and message["seq"] >= self.goal:
                            self.reached.set()
            except (TimeoutError, ConnectionClosed, InvalidHandshake, OSError):
                pass
            self.connected.clear()
            await asyncio.sleep(random.uniform(0.05, 0.3))  # jittered back-off before resuming


async def start_readers(readers: list[Reader], parallel: int = 100) -> list[asyncio.Task]:
    """Start every reader and wait until each is connected, `parallel` handshakes at a time."""
    tasks = []
    for start in range(0, len(readers), parallel):
        batch = readers[start : start + parallel]
        tasks += [asyncio.create_task(reader.run()) for reader in batch]
        await asyncio.wait_for(asyncio.gather(*(r.connected.wait() for r in batch)), 60)
    return tasks


class StalledReader:
    """A raw WebSocket client that completes the handshake and then stops reading.

    A tiny receive buffer and segment size keep the kernel from absorbing megabytes on
    loopback, so the server's own buffer limit is what decides.
    """

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def read_until_close(self, timeout: float = 30) -> int | None:
        """Start reading again; return the close code the server sent, or None on EOF."""
        return self.read_events_until_close(timeout)[1]

    def read_events_until_close(self, timeout: float = 30) -> tuple[list[int], int | None]:
        """Read on: the seqs of the events before the close, and the close code."""
        self.sock.settimeout(timeout)
        seqs: list[int] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return seqs, None
            opcode, payload = frame
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return seqs, code
            if opcode == 0x1:
                message = json.loads(payload)
                if message.get("type") not in ("hello", "heartbeat"):
                    seqs.append(message["seq"])

    def _next_frame(self) -> tuple[int, bytes] | None:
        while True:
            parsed = _parse_frame(self.buffer)
            if parsed is not None:
                opcode, payload, used = parsed
                self.buffer = self.buffer[used:]
                return opcode, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def _parse_frame(data: bytes) -> tuple[int, bytes, int] | None:
    if len(data) < 2:
        return None
    opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
    if length == 126:
        if len(data) < 4:
            return None
        length, offset = struct.unpack("!H", data[2:4])[0], 4
    elif length == 127:
        if len(data) < 10:
            return None
        length, offset = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < offset + length:
        return None
    return opcode, data[offset : offset + length], offset + length


async def all_reach(readers: list[Reader], goal: int, timeout: float) -> None:
    for reader in readers:
        reader.aim(goal)
    await asyncio.wait_for(asyncio.gather(*(r.reached.wait() for r in readers)), timeout)
