"""Clients of a running Bulletin: HTTP through ASGI, WebSocket readers, and its metrics."""

import asyncio
import base64
import json
import os
import random
import socket
import struct
from collections.abc import Sequence
from typing import Protocol

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake


def asgi_client(app: FastAPI, host: str | None = None) -> httpx.AsyncClient:
    """An HTTP client of `app` in this process; its requests come from `host` if given."""
    if host is None:
        transport = httpx.ASGITransport(app=app)
    else:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://bulletin.test")


async def next_message(ws: ClientConnection) -> dict:
    """The next message that is not a heartbeat."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if message["type"] != "heartbeat":
            return message


async def read_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """The server's /metrics as {sample with its labels: value}, e.g. 'x_total{form="text"}'."""
    text = (await client.get("/metrics")).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            sample, _, value = line.rpartition(" ")
            samples[sample] = float(value)
    return samples


async def slow_readers_closed(client: httpx.AsyncClient) -> float:
    """How many readers the server has cut off for not keeping up."""
    return (await read_metrics(client))["bulletin_slow_readers_closed_total"]


class Reader:
    """Reads a blog's stream over WebSocket, recording every seq (and created entry id) it
    is sent; after losing its connection it resumes with `?since=<last seq>`, after a
    jittered back-off, until it is cancelled or closed with a terminal code."""

    def __init__(
        self,
        ws_base: str,
        slug: str,
        since: int | None = None,
        *,
        open_timeout: float = 30,
        backoff: tuple[float, float] = (0.05, 0.3),
    ) -> None:
        self.url = f"{ws_base}/api/v1/blogs/{slug}/ws"
        self.since = since
        self.open_timeout = open_timeout
        self.backoff = backoff
        self.hello_seq: int | None = None
        self.seqs: list[int] = []
        self.entry_ids: list[int] = []
        self.connections = 0
        self.closes: list[tuple[int | None, str | None]] = []
        # Set once the server has this reader: on its `hello`, or on connecting with `since`
        # (a resuming reader is sent what it missed, and no hello).
        self.attached = asyncio.Event()
        self.goal: int | None = None
        self.reached = asyncio.Event()

    def aim(self, goal: int) -> None:
        """Set `reached` once this reader has seq `goal`."""
        self.goal = goal
        if self.seqs and self.seqs[-1] >= goal:
            self.reached.set()
        else:
            self.reached.clear()

    def describe(self) -> tuple:
        """(last seq, closes) for a failure message."""
        return (self.seqs[-1] if self.seqs else None, self.closes)

    def _take(self, message: dict) -> None:
        if message["type"] == "heartbeat":
            return
        if message["type"] == "hello":
            self.hello_seq = message["seq"]
            if self.since is None:
                self.since = message["seq"]
            self.attached.set()
            return
        self.seqs.append(message["seq"])
        self.since = message["seq"]
        if message["type"] == "entry.created":
            self.entry_ids.append(message["entry"]["id"])
        if self.goal is not None and message["seq"] >= self.goal:
            self.reached.set()

    async def run(self) -> None:
        while True:
            query = "" if self.since is None else f"?since={self.since}"
            try:
                async with connect(self.url + query, open_timeout=self.open_timeout) as ws:
                    self.connections += 1
                    if query:
                        self.attached.set()
                    try:
                        async for raw in ws:
                            self._take(json.loads(raw))
                    finally:
                        if not self.reached.is_set():
                            self.closes.append((ws.close_code, ws.close_reason))
                if ws.close_code is not None and 4500 <= ws.close_code < 5000:
                    return  # terminal: a real client would not retry either
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            await asyncio.sleep(random.uniform(*self.backoff))


class Following(Protocol):
    """What start_readers and all_reach need of a reader: Reader, and tests/support/fleet.py's."""

    attached: asyncio.Event
    reached: asyncio.Event

    async def run(self) -> None: ...

    def aim(self, goal: int) -> None: ...

    def describe(self) -> tuple: ...


async def start_readers(
    readers: Sequence[Following], parallel: int = 100, timeout: float = 60
) -> list[asyncio.Task]:
    """Start every reader and wait until the server has each (it misses nothing from then
    on), `parallel` handshakes at a time."""
    tasks = []
    for start in range(0, len(readers), parallel):
        batch = readers[start : start + parallel]
        tasks += [asyncio.create_task(reader.run()) for reader in batch]
        await asyncio.wait_for(asyncio.gather(*(r.attached.wait() for r in batch)), timeout)
    return tasks


async def all_reach(readers: Sequence[Following], goal: int, timeout: float) -> None:
    """Wait until every reader has seq `goal`; fail describing some of those still behind."""
    for reader in readers:
        reader.aim(goal)
    try:
        await asyncio.wait_for(asyncio.gather(*(r.reached.wait() for r in readers)), timeout)
    except TimeoutError:
        behind = [(i, r.describe()) for i, r in enumerate(readers) if not r.reached.is_set()]
        pytest.fail(f"{len(behind)} readers did not reach seq {goal}; some: {behind[:10]}")


async def stop_tasks(tasks: list[asyncio.Task]) -> None:
    """Cancel the tasks; re-raise anything one of them failed with."""
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


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
