"""Reconnect storm: N readers dropped at once by a restart, resuming with `since`.

Two `bulletin serve` processes share one SQLite database and a Redis broker: one takes the
publishing (an entry every --interval seconds, all along), the other holds the N readers.
That one is restarted (SIGTERM: its readers are closed with 1012, then it starts again on the
same port); every reader reconnects with `?since=<last seq>` after a jittered back-off, as
bulletin.js does. Measured: seconds from the drop until every reader has every event up to
the head at the moment the server was back, events lost or doubled, and the database reads
the restarted server made for the resumes (its `bulletin_catch_up_queries_total`).

    .venv/bin/python bench/storm.py --readers 10000
    .venv/bin/python bench/storm.py --readers 2000 --interval 0.05
"""

import argparse
import asyncio
import base64
import datetime
import http.client
import json
import multiprocessing
import os
import random
import re
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from fanout import raise_open_files
from servers import HOST, Bulletin, free_port, redis_up, start_redis

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEQ = re.compile(rb'"seq":(\d+)')
OFFER = "permessage-deflate; client_max_window_bits"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2, help="reader processes")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between entries")
    parser.add_argument("--message-bytes", type=int, default=1500)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


# --- the readers (in their own processes) ------------------------------------------------


class Resuming(asyncio.Protocol):
    """One reader: follows the blog, and on losing its connection resumes with `since`."""

    def __init__(self, crowd: "Crowd") -> None:
        self.crowd = crowd
        self.last_seq: int | None = None
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.inflating = False

    def connect(self) -> None:
        self.crowd.loop.create_task(self._connect())

    async def _connect(self) -> None:
        query = "" if self.last_seq is None else f"?since={self.last_seq}"
        while True:
            try:
                await self.crowd.loop.create_connection(lambda: self, HOST, self.crowd.port)
                break
            except OSError:
                await asyncio.sleep(random.uniform(0.1, 0.5))  # the server is not back yet
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {self.crowd.path}{query} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Extensions: {OFFER}\r\n\r\n".encode()
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer, self.upgraded = b"", False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.crowd.refused += 1
                assert self.transport is not None
                self.transport.close()
                return
            self.inflating = b"permessage-deflate" in head
            self.upgraded = True
            self.crowd.opened += 1
        self._frames()

    def _frames(self) -> None:
        buffer, position = self.buffer, 0
        while len(buffer) - position >= 2:
            first, length, head = buffer[position], buffer[position + 1] & 0x7F, 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length, head = int.from_bytes(buffer[position + 2 : position + 4], "big"), 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length, head = int.from_bytes(buffer[position + 2 : position + 10], "big"), 10
            end = position + head + length
            if end > len(buffer):
                break
            payload = buffer[position + head : end]
            if first & 0x40:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            self._message(first & 0x0F, payload)
            position = end
        self.buffer = buffer[position:]

    def _message(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9 and self.transport is not None:  # a ping: answer it (masked, empty)
            self.transport.write(b"\x8a\x80" + os.urandom(4))
        if opcode == 0x8:  # the server's close: counted by code, for the report
            code = str(int.from_bytes(payload[:2], "big")) if len(payload) >= 2 else "none"
            self.crowd.closes[code] = self.crowd.closes.get(code, 0) + 1
        if opcode != 0x1 or b'"type":"heartbeat"' in payload:
            return
        match = SEQ.search(payload)
        if match is None:
            return
        seq = int(match.group(1))
        if b'"type":"hello"' not in payload and self.last_seq is not None:
            if seq <= self.last_seq:
                self.crowd.doubled += 1
                return
            if seq != self.last_seq + 1:
                self.crowd.lost += seq - self.last_seq - 1
        self.last_seq = seq

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.crowd.dropped += 1
        delay = random.uniform(0.05, 1.0)  # jittered, as bulletin.js backs off
        self.crowd.loop.call_later(delay, self.connect)


class Crowd:
    def __init__(self, loop: asyncio.AbstractEventLoop, port: int, path: str) -> None:
        self.loop, self.port, self.path = loop, port, path
        self.readers: list[Resuming] = []
        self.opened = self.dropped = self.refused = self.lost = self.doubled = 0
        self.closes: dict[str, int] = {}  # close code -> how many the server sent

    def status(self, head: int) -> dict[str, int]:
        seqs = [reader.last_seq or 0 for reader in self.readers]
        return {
            "opened": self.opened,
            "dropped": self.dropped,
            "refused": self.refused,
            "lost": self.lost,
            "doubled": self.doubled,
            "caught_up": sum(1 for seq in seqs if seq >= head),
            **{f"closed {code}": count for code, count in self.closes.items()},
        }


def crowd_process(port: int, path: str, readers: int, pipe: Connection) -> None:
    os.nice(10)  # as in bench/fanout.py: readers run on what the servers leave

    async def main() -> None:
        loop = asyncio.get_running_loop()
        crowd = Crowd(loop, port, path)
        for _ in range(readers):
            reader = Resuming(crowd)
            crowd.readers.append(reader)
            reader.connect()
            await asyncio.sleep(0)
        while True:
            while not pipe.poll():
                await asyncio.sleep(0.05)
            head = pipe.recv()
            if head is None:
                return
            pipe.send(crowd.status(head))

    import uvloop

    uvloop.run(main())


# --- the run ---------------------------------------------------------------------------


def metrics(port: int) -> dict[str, float]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            sample, _, value = line.rpartition(" ")
            samples[sample] = float(value)
    return samples


def head_seq(server: Bulletin) -> int:
    """The blog's newest seq, asked of the log (with the token: no cached answer)."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        connection.request("GET", f"/api/v1/blogs/{server.slug}", headers=server._headers())
        return int(json.loads(connection.getresponse().read())["head_seq"])
    finally:
        connection.close()


class Publishing(threading.Thread):
    """An entry every `interval` seconds through the publishing process, until stopped."""

    def __init__(self, server: Bulletin, interval: float) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.acked = 0
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        index = 0
        while not self.stopping.wait(self.interval):
            try:
                self.server.publish(index % 9000, time.time_ns())
                self.acked += 1
            except Exception:
                self.failures += 1
            index += 1


def run_storm(args: argparse.Namespace, workdir: Path, broker_url: str) -> dict[str, object]:
    size = args.message_bytes
    publisher = Bulletin(workdir, size, broker_url=broker_url)
    streams = Bulletin(workdir, size, broker_url=broker_url)
    streams.log_path = workdir / "streams.log"
    crowds: list[tuple[multiprocessing.Process, Connection]] = []
    publishing = Publishing(publisher, args.interval)
    try:
        publisher.start()
        publisher.warm_up()
        streams.token, streams.slug, streams.ws_path = (
            publisher.token,
            publisher.slug,
            publisher.ws_path,
        )
        streams.launch(free_port())
        share = [args.readers // args.clients] * args.clients
        share[0] += args.readers - sum(share)
        for count in share:
            ours, theirs = multiprocessing.Pipe()
            process = multiprocessing.Process(
                target=crowd_process, args=(streams.port, streams.ws_path, count, theirs)
            )
            process.start()
            crowds.append((process, ours))

        def status(head: int) -> dict[str, int]:
            totals: dict[str, int] = {}
            for _process, pipe in crowds:
                pipe.send(head)
                for key, value in pipe.recv().items():
                    totals[key] = totals.get(key, 0) + value
            return totals

        _wait(lambda: status(0)["opened"] >= args.readers, args.timeout, "readers to connect")
        publishing.start()
        time.sleep(2)  # live for a while first
        streams_port = streams.port
        overflows_before = listen_overflows()
        dropped_at = time.monotonic()
        streams.stop()
        streams.launch(streams_port)
        back_at = time.monotonic()
        head = head_seq(publisher)
        try:
            _wait(lambda: status(head)["caught_up"] >= args.readers, args.timeout, "catching up")
        except TimeoutError as timed_out:
            print(streams.log_tail(40), file=sys.stderr)
            raise TimeoutError(f"{timed_out}: readers' totals {status(head)}") from None
        caught_up_at = time.monotonic()
        overflows = listen_overflows() - overflows_before
        final = status(head)
        counted = metrics(streams.port)
        queries = {
            kind: int(counted.get(f'bulletin_catch_up_queries_total{{kind="{kind}"}}', 0))
            for kind in ("load", "head", "replay")
        }
        catch_up_seconds = caught_up_at - dropped_at
        return {
            "readers": args.readers,
            "down_seconds": round(back_at - dropped_at, 2),
            "caught_up_seconds": round(catch_up_seconds, 2),
            "after_back_seconds": round(caught_up_at - back_at, 2),
            "catch_up_queries": queries,
            "queries_per_100ms": round(sum(queries.values()) / (catch_up_seconds / 0.1), 3),
            "gap_fills": int(counted.get("bulletin_gap_fills_total", 0)),
            "lost": final["lost"],
            "doubled": final["doubled"],
            "reconnects": final["dropped"],
            "head_when_back": head,
            "publish_failures": publishing.failures,
            # Handshakes the kernel dropped, the accept queue being full, from the drop on
            # (the whole machine's count: nothing else here opens connections meanwhile).
            "listen_overflows": overflows,
        }
    finally:
        publishing.stopping.set()
        for process, pipe in crowds:
            pipe.send(None)
            process.join(10)
            if process.is_alive():
                process.kill()
        streams.stop()
        publisher.stop()


def listen_overflows() -> int:
    """The kernel's count of connections dropped for a full accept queue (TcpExt
    ListenOverflows in /proc/net/netstat; what `nstat` shows)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            counts = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counts["ListenOverflows"])
    return 0


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_files(args.readers)
    redis_process = None
    with tempfile.TemporaryDirectory(prefix="bulletin-storm-") as tmp:
        try:
            if not redis_up():
                redis_process = start_redis(Path(tmp))
            load = os.getloadavg()
            result = run_storm(args, Path(tmp), args.redis_url)
        finally:
            if redis_process is not None:
                redis_process.kill()
                redis_process.wait(5)
    now = datetime.datetime.now(datetime.UTC)
    result["load_average_before"] = [round(value, 2) for value in load]
    result["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    text = json.dumps(result, indent=2)
    out = args.out or RESULTS_DIR / f"storm-{now:%Y-%m-%d-%H%M}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    print(f"saved to {out}", file=sys.stderr)
    return 0 if result["lost"] == 0 and result["doubled"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
