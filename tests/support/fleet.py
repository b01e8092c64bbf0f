"""Many lean readers of one blog, over WebSocket and SSE, and a publisher that retries.

Each reader records every seq it is sent and when its connections opened and broke, and
resumes after a break from its last seq (`?since=` on WebSocket, `Last-Event-ID` on SSE,
as the browser client and EventSource do). Thousands fit in one test process: no task or
queue per reader beyond its connection, no compression, no client pings.
"""

import asyncio
import json
import random
import time

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.support.factories import ADMIN

WAIT_SECONDS = 60


class FleetReader:
    """What every reader records; `run()` is its transport's."""

    def __init__(self, base: str, slug: str, *, backoff: tuple[float, float] = (0.05, 0.5)) -> None:
        self.base = base
        self.slug = slug
        self.backoff = backoff
        self.since: int | None = None
        self.seqs: list[int] = []
        # When each connection opened, and when each one broke (monotonic seconds).
        self.opened: list[float] = []
        self.broken: list[float] = []
        self.attached = asyncio.Event()
        self.goal: int | None = None
        self.reached = asyncio.Event()
        self.terminal: int | None = None

    def aim(self, goal: int) -> None:
        self.goal = goal
        if self.seqs and self.seqs[-1] >= goal:
            self.reached.set()
        else:
            self.reached.clear()

    def describe(self) -> tuple:
        """(last seq, connections, terminal close code) for a failure message."""
        return (self.seqs[-1] if self.seqs else None, len(self.opened), self.terminal)

    def _connected(self) -> None:
        self.opened.append(time.monotonic())
        if self.since is not None:
            self.attached.set()  # a resuming reader gets what it missed, and no hello

    def _take(self, message: dict) -> None:
        kind = message["type"]
        if kind == "heartbeat":
            return
        if kind == "hello":
            if self.since is None:
                self.since = message["seq"]
            self.attached.set()
            return
        self.seqs.append(message["seq"])
        self.since = message["seq"]
        if self.goal is not None and message["seq"] >= self.goal:
            self.reached.set()

    async def _pause(self) -> None:
        self.broken.append(time.monotonic())
        await asyncio.sleep(random.uniform(*self.backoff))  # jittered back-off, as clients do

    def resumed_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first connection opened after a break at or after it."""
        if not any(broke >= moment for broke in self.broken):
            return None
        later = [opened for opened in self.opened if opened > moment]
        return later[0] - moment if later else None


class WebSocketReader(FleetReader):
    async def run(self) -> None:
        url = f"{self.base.replace('http', 'ws', 1)}/api/v1/blogs/{self.slug}/ws"
        while True:
            query = "" if self.since is None else f"?since={self.since}"
            try:
                async with connect(
                    url + query,
                    open_timeout=10,
                    compression=None,
                    ping_interval=None,
                    max_queue=None,
                ) as ws:
                    self._connected()
                    async for raw in ws:
                        self._take(json.loads(raw))
                if ws.close_code is not None and 4500 <= ws.close_code < 5000:
                    self.terminal = ws.close_code
                    return
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            await self._pause()


class SseReader(FleetReader):
    def __init__(self, base: str, slug: str, client: httpx.AsyncClient, **options: object) -> None:
        super().__init__(base, slug, **options)  # type: ignore[arg-type]
        self.client = client

    async def run(self) -> None:
        url = f"{self.base}/api/v1/blogs/{self.slug}/sse"
        while True:
            headers = {} if self.since is None else {"Last-Event-ID": str(self.since)}
            try:
                async with self.client.stream("GET", url, headers=headers) as response:
                    if response.status_code == 200:
                        self._connected()
                        async for line in response.aiter_lines():
                            if line.startswith("data: "):
                                self._take(json.loads(line[6:]))
            except httpx.HTTPError:
                pass
            await self._pause()


def sse_client() -> httpx.AsyncClient:
    """One client for many SSE readers: no pool limit, no read timeout (streams are idle)."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        timeout=httpx.Timeout(10, read=None),
    )


def misdelivered(reader: FleetReader, head: int) -> str | None:
    """How this reader's seqs differ from the log's 1..head, or None if they do not."""
    expected = list(range(1, head + 1))
    if reader.seqs == expected:
        return None
    seen = set(reader.seqs)
    lost = sorted(set(expected) - seen)
    repeated = sorted({seq for seq in seen if reader.seqs.count(seq) > 1})
    reordered = [b for a, b in zip(reader.seqs, reader.seqs[1:], strict=False) if b < a]
    return f"lost {lost[:10]}, repeated {repeated[:10]}, reordered {reordered[:10]}"


class Publisher:
    """Posts numbered entries one after another through `base`, retrying an attempt that
    failed (a 5xx, a broken connection) with the same Idempotency-Key until acknowledged."""

    def __init__(self, base: str, slug: str, *, keep_alive: bool = False) -> None:
        self.base = base
        # Without keep-alive every POST is a new connection, so it may land on any node or
        # worker.
        self.limits = httpx.Limits(max_keepalive_connections=None if keep_alive else 0)
        self.url = f"/api/v1/blogs/{slug}/entries"
        self.acked: list[int] = []
        self.failed_attempts = 0
        self.progress = asyncio.Condition()

    async def publish(self, client: httpx.AsyncClient, number: int) -> None:
        headers = {**ADMIN, "Idempotency-Key": f"update-{number}"}
        body = {"body": f"<p>Update {number}</p>"}
        while True:
            try:
                response = await client.post(self.url, json=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500:
                if response.status_code != 201:
                    raise AssertionError(response.text)
                break
            self.failed_attempts += 1
            await asyncio.sleep(0.05)  # back-off while a node is away
        async with self.progress:
            self.acked.append(response.json()["id"])
            self.progress.notify_all()

    async def run(
        self, count: int | None = None, until: asyncio.Event | None = None, pause: float = 0.0
    ) -> None:
        """Publish `count` entries, or until `until` is set."""
        async with httpx.AsyncClient(base_url=self.base, timeout=10, limits=self.limits) as client:
            number = 0
            while (count is None or number < count) and not (until and until.is_set()):
                await self.publish(client, number)
                number += 1
                if pause:
                    await asyncio.sleep(pause)  # pacing the newsroom, not a synchronisation

    async def acked_at_least(self, count: int, timeout: float = WAIT_SECONDS) -> int:
        """Wait until `count` entries are acknowledged; how many are by then."""
        async with self.progress:
            await asyncio.wait_for(
                self.progress.wait_for(lambda: len(self.acked) >= count), timeout
            )
            return len(self.acked)


async def plain_get(
    base: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a connection of its own, as a lone feed reader makes it: the status, the
    headers (lower-case names) and the body. Thousands of these cost the test process far
    less than a pooled client does, and no reused connection can have been closed under it."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = await reader.read()  # the server closes after its answer
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), {k.lower(): v for k, v in fields.items()}, body
