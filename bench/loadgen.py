"""The load generator: reader processes, each with its own event loop and a share of the readers.

A reader is a minimal WebSocket client written straight on an asyncio protocol (uvloop):
no task, no queue and no per-message objects, so a receive costs a few microseconds and
the client side is not what is measured. It offers permessage-deflate exactly as browsers
do (`permessage-deflate; client_max_window_bits`) and inflates when the server accepts.
Each message's publish-to-receive latency is computed from the send time the publisher
stamped into it (`payload.py`); every process reports them per message to the parent.
"""

import asyncio
import base64
import contextlib
import multiprocessing
import os
import re
import time
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from payload import parse_stamp

OFFERED_EXTENSION = "permessage-deflate; client_max_window_bits"
_HANDSHAKE_TIMEOUT = 30.0
_ATTEMPTS = 3
_WINDOW_BITS = re.compile(r"server_max_window_bits=(\d+)")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str


@dataclass
class Tally:
    """What one process's readers received."""

    messages: int
    latencies: list[array] = field(default_factory=list)
    connected: int = 0
    complete: int = 0  # readers that have every message
    dropped: int = 0  # readers that went away before having every message
    lost: int = 0  # readers the server closed or reset, at any time
    other: int = 0  # hello, heartbeats: anything without a benchmark stamp
    duplicates: int = 0
    payload_bytes: int = 0
    compressed: int = 0  # messages that arrived deflated
    closes: Counter[str] = field(default_factory=Counter)
    extension: str = ""
    finishing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.latencies = [array("q") for _ in range(self.messages)]

    def settle(self) -> None:
        if self.finishing and self.complete + self.dropped >= self.connected:
            self.done.set()


class HandshakeRefused(Exception):
    pass


class WsReader(asyncio.Protocol):
    """One reader: handshake, then unmasked server frames parsed in place."""

    def __init__(self, tally: Tally, request: bytes, opened: asyncio.Future[str]) -> None:
        self.tally = tally
        self.request = request
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.buffer = b""
        self.upgraded = False
        self.inflater: zlib._Decompress | None = None
        self.fragments: list[bytes] | None = None
        self.fragments_compressed = False
        self.seen = 0  # bit i set: message i received
        self.count = 0
        self.leaving = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during handshake: {exc}"))
            return
        if self.leaving or not self.upgraded:
            return
        tally = self.tally
        tally.lost += 1
        if self.count < tally.messages:
            tally.dropped += 1
            tally.settle()

    def leave(self) -> None:
        self.leaving = True
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        # One clock read per read(): frames that arrived together arrived at the same time.
        now = time.time_ns()
        if not self.upgraded:
            data = self._handshake(data)
            if not data:
                return
        buffer = self.buffer + data if self.buffer else data
        pos = 0
        end = len(buffer)
        while end - pos >= 2:
            first = buffer[pos]
            length = buffer[pos + 1]
            if length & 0x80:
                self._fail("masked frame from server")
                return
            header = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                header = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 10
            stop = pos + header + length
            if stop > end:
                break
            self._frame(first, buffer[pos + header : stop], now)
            pos = stop
        self.buffer = buffer[pos:] if pos < end else b""

    def _handshake(self, data: bytes) -> bytes:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 16384:
                self._fail("oversized handshake response")
            return b""
        lines = self.head[:end].decode("latin-1").split("\r\n")
        rest = self.head[end + 4 :]
        self.head = b""
        if lines[0].split(" ", 2)[1:2] != ["101"]:
            self.opened.set_exception(HandshakeRefused(lines[0][:80]))
            self.leave()
            return b""
        extension = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                extension = value.strip()
        if "permessage-deflate" in extension:
            bits = _WINDOW_BITS.search(extension)
            self.inflater = zlib.decompressobj(-int(bits.group(1)) if bits else -15)
        self.upgraded = True
        self.opened.set_result(extension)
        return rest

    def _frame(self, first: int, payload: bytes, now: int) -> None:
        opcode = first & 0x0F
        fin = first & 0x80
        if opcode in (1, 2):
            compressed = bool(first & 0x40)
            if not fin:
                self.fragments = [payload]
                self.fragments_compressed = compressed
                return
        elif opcode == 0:
            if self.fragments is None:
                self._fail("continuation without a start")
                return
            self.fragments.append(payload)
            if not fin:
                return
            payload = b"".join(self.fragments)
            compressed = self.fragments_compressed
            self.fragments = None
        elif opcode == 9:
            self._send(0xA, payload)
            return
        elif opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.tally.closes[str(code)] += 1
            self._send(0x8, payload[:2])
            if self.transport is not None:
                self.transport.close()
            return
        else:
            return  # pong or reserved
        if compressed:
            if self.inflater is None:
                self._fail("compressed frame without permessage-deflate")
                return
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            self.tally.compressed += 1
        self._message(payload, now)

    def _message(self, payload: bytes, now: int) -> None:
        tally = self.tally
        stamped = parse_stamp(payload)
        if stamped is None or stamped[0] >= tally.messages:
            tally.other += 1
            return
        index, sent_ns = stamped
        bit = 1 << index
        if self.seen & bit:
            tally.duplicates += 1
            return
        self.seen |= bit
        tally.latencies[index].append(now - sent_ns)
        tally.payload_bytes += len(payload)
        self.count += 1
        if self.count == tally.messages:
            tally.complete += 1
            tally.settle()

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked control frame (clients must mask; payloads here are tiny)."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def _fail(self, reason: str) -> None:
        self.tally.closes[f"client: {reason}"] += 1
        self.leave()


def _request(target: Target) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {target.path} HTTP/1.1\r\n"
        f"Host: {target.host}:{target.port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {OFFERED_EXTENSION}\r\n"
        f"Origin: http://{target.host}:{target.port}\r\n"
        "User-Agent: bulletin-bench\r\n\r\n"
    ).encode()


async def _open_readers(
    tally: Tally, target: Target, count: int, concurrency: int
) -> tuple[list[WsReader], Counter[str]]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    readers: list[WsReader] = []
    failures: Counter[str] = Counter()

    async def open_one() -> None:
        for attempt in range(_ATTEMPTS):
            async with gate:
                opened: asyncio.Future[str] = loop.create_future()
                reader = WsReader(tally, _request(target), opened)
                try:
                    connecting = loop.create_connection(
                        lambda reader=reader: reader, target.host, target.port
                    )
                    await asyncio.wait_for(connecting, _HANDSHAKE_TIMEOUT)
                    tally.extension = await asyncio.wait_for(opened, _HANDSHAKE_TIMEOUT)
                    readers.append(reader)
                    return
                except (OSError, TimeoutError, HandshakeRefused) as error:
                    failures[f"{type(error).__name__}: {str(error)[:60]}"] += 1
                    reader.leave()
            await asyncio.sleep(0.2 * (attempt + 1))  # a full backlog drains meanwhile

    await asyncio.gather(*(open_one() for _ in range(count)))
    return readers, failures


async def _next_command(conn: Connection) -> tuple:
    """The parent's next command, awaited on the loop (the pipe is just another fd)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(conn.fileno())
        # The loop made the fd non-blocking; a large report must not be cut short.
        os.set_blocking(conn.fileno(), True)
    return conn.recv()


async def _work(conn: Connection, target: Target, count: int, messages: int, gate: int) -> None:
    tally = Tally(messages)
    started = time.monotonic()
    readers, failures = await _open_readers(tally, target, count, gate)
    tally.connected = len(readers)
    conn.send(
        {
            "connected": len(readers),
            "failures": dict(failures),
            "extension": tally.extension,
            "seconds": time.monotonic() - started,
            "lost": tally.lost,
        }
    )
    command = await _next_command(conn)
    if command[0] == "finish":
        tally.finishing = True
        tally.settle()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.done.wait(), command[1])
        conn.send(
            {
                "connected": tally.connected,
                "complete": tally.complete,
                "dropped": tally.dropped,
                "lost": tally.lost,
                "other": tally.other,
                "duplicates": tally.duplicates,
                "payload_bytes": tally.payload_bytes,
                "compressed": tally.compressed,
                "closes": dict(tally.closes),
                "latencies": [lat.tobytes() for lat in tally.latencies],
            }
        )
        await _next_command(conn)  # "exit"
    for reader in readers:
        reader.leave()


def worker_main(
    conn: Connection, target: Target, count: int, messages: int, gate: int, nice: int
) -> None:
    import uvloop  # comes with uvicorn[standard]; imported in the worker only

    if nice:
        # Below the server's priority: on a small machine the readers take what it leaves.
        os.nice(nice)

    uvloop.run(_work(conn, target, count, messages, gate))


@dataclass
class Delivery:
    """Everything the reader processes saw, merged."""

    connected: int
    complete: int
    dropped: int
    lost: int
    other: int
    duplicates: int
    payload_bytes: int
    compressed: int
    closes: Counter[str]
    latencies_ns: list[list[int]]  # per message, one entry per reader that received it

    @property
    def delivered(self) -> int:
        return sum(len(per_message) for per_message in self.latencies_ns)


class ReaderPool:
    """`processes` reader processes sharing `readers` connections to one target."""

    def __init__(
        self,
        target: Target,
        readers: int,
        messages: int,
        processes: int,
        nice: int = 0,
        gate: int = 64,
    ) -> None:
        self.messages = messages
        context = multiprocessing.get_context("spawn")
        shares = [readers // processes + (i < readers % processes) for i in range(processes)]
        self.links: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for share in shares:
            if share == 0:
                continue
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=worker_main,
                args=(child_end, target, share, messages, gate, nice),
                daemon=True,
            )
            process.start()
            child_end.close()
            self.links.append(parent_end)
            self.processes.append(process)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def _gather(self, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        replies: dict[Connection, dict] = {}
        while len(replies) < len(self.links):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self.links) - len(replies)} reader processes silent")
            for link in wait([lk for lk in self.links if lk not in replies], left):
                assert isinstance(link, Connection)
                try:
                    replies[link] = link.recv()
                except EOFError as error:
                    raise RuntimeError("a reader process died") from error
        return [replies[link] for link in self.links]

    def wait_connected(self, timeout: float) -> dict:
        replies = self._gather(timeout)
        failures: Counter[str] = Counter()
        for reply in replies:
            failures.update(reply["failures"])
        return {
            "connected": sum(reply["connected"] for reply in replies),
            "lost": sum(reply["lost"] for reply in replies),
            "failures": failures,
            "extension": next((r["extension"] for r in replies if r["extension"]), ""),
            "seconds": max(reply["seconds"] for reply in replies),
        }

    def finish(self, timeout: float) -> Delivery:
        """Wait until every reader has every message (or `timeout`), then merge the reports."""
        for link in self.links:
            link.send(("finish", timeout))
        replies = self._gather(timeout + 30)
        latencies: list[list[int]] = [[] for _ in range(self.messages)]
        closes: Counter[str] = Counter()
        for reply in replies:
            closes.update(reply["closes"])
            for index, raw in enumerate(reply["latencies"]):
                per_message = array("q")
                per_message.frombytes(raw)
                latencies[index].extend(per_message)
        return Delivery(
            connected=sum(reply["connected"] for reply in replies),
            complete=sum(reply["complete"] for reply in replies),
            dropped=sum(reply["dropped"] for reply in replies),
            lost=sum(reply["lost"] for reply in replies),
            other=sum(reply["other"] for reply in replies),
            duplicates=sum(reply["duplicates"] for reply in replies),
            payload_bytes=sum(reply["payload_bytes"] for reply in replies),
            compressed=sum(reply["compressed"] for reply in replies),
            closes=closes,
            latencies_ns=latencies,
        )

    def close(self) -> None:
        for link in self.links:
            with contextlib.suppress(OSError):
                link.send(("exit",))
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        for link in self.links:
            link.close()
