"""Fault tests on real processes: readers keep exactly-once, in-order delivery across a
SIGKILLed server and across a Redis restart under two workers.

Every wait is on something observable (a message, an acknowledged POST, a process
answering, Redis reporting subscribers) and every wait is bounded.
"""

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from app.realtime.broker.redis import CHANNEL
from tests.conftest import ADMIN, ADMIN_TOKEN, fresh_database, read_log
from tests.support.servers import RedisProcess, ServerProcess

SLUG = "fault-night"
READERS = 20
WAIT_SECONDS = 30


# --- clients -------------------------------------------------------------------


class Reader:
    """One WebSocket reader: records every seq (and created entry id) it is sent, resumes
    with `?since=<last seq>` after losing its connection, and stops once it has the goal."""

    def __init__(self, ws_base: str, slug: str) -> None:
        self.url = f"{ws_base}/api/v1/blogs/{slug}/ws"
        self.since: int | None = None
        self.hello_seq: int | None = None
        self.seqs: list[int] = []
        self.entry_ids: list[int] = []
        self.connections = 0
        self.closes: list[tuple[int | None, str | None]] = []
        self.greeted = asyncio.Event()
        self.goal: int | None = None
        self.reached = asyncio.Event()

    def aim(self, goal: int) -> None:
        self.goal = goal
        if self.seqs and self.seqs[-1] >= goal:
            self.reached.set()

    def _take(self, message: dict) -> None:
        if message["type"] == "heartbeat":
            return
        if message["type"] == "hello":
            self.hello_seq = message["seq"]
            if self.since is None:
                self.since = message["seq"]
            self.greeted.set()
            return
        self.seqs.append(message["seq"])
        self.since = message["seq"]
        if message["type"] == "entry.created":
            self.entry_ids.append(message["entry"]["id"])
        if self.goal is not None and message["seq"] >= self.goal:
            self.reached.set()

    async def run(self) -> None:
        while not self.reached.is_set():
            query = "" if self.since is None else f"?since={self.since}"
            try:
                async with connect(self.url + query, open_timeout=10) as ws:
                    self.connections += 1
                    try:
                        async for raw in ws:
                            self._take(json.loads(raw))
                            if self.reached.is_set():
                                return
                    finally:
                        if not self.reached.is_set():
                            self.closes.append((ws.close_code, ws.close_reason))
                if ws.close_code is not None and 4500 <= ws.close_code < 5000:
                    return  # terminal: a real client would not retry either
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            await asyncio.sleep(0.05 + random.random() * 0.1)  # back-off before resuming


class Publisher:
    """Posts entries one after another, each with its own Idempotency-Key, retrying a
    failed attempt with the same key until the server acknowledges it."""

    def __init__(self, http_base: str, slug: str, *, keep_alive: bool = True) -> None:
        self.http_base = http_base
        # Without keep-alive every POST is a new connection, so it may land on any worker.
        self.limits = httpx.Limits(max_keepalive_connections=None if keep_alive else 0)
        self.url = f"/api/v1/blogs/{slug}/entries"
        self.acked: list[int] = []
        self.failed_attempts = 0
        self.replayed = 0
        self._progress = asyncio.Condition()

    async def _post(self, client: httpx.AsyncClient, number: int) -> None:
        headers = {**ADMIN, "Idempotency-Key": f"update-{number}"}
        body = {"body": f"<p>Update {number}</p>"}
        while True:
            try:
                response = await client.post(self.url, json=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500:
                assert response.status_code == 201, response.text
                break
            self.failed_attempts += 1
            await asyncio.sleep(0.05)  # back-off while the server is away
        if response.headers.get("Idempotent-Replayed") == "true":
            self.replayed += 1
        async with self._progress:
            self.acked.append(response.json()["id"])
            self._progress.notify_all()

    async def run(self, count: int | None = None, until: asyncio.Event | None = None) -> None:
        async with httpx.AsyncClient(
            base_url=self.http_base, timeout=10, limits=self.limits
        ) as client:
            number = 0
            while (count is None or number < count) and not (until and until.is_set()):
                await self._post(client, number)
                number += 1

    async def acked_at_least(self, count: int) -> int:
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: len(self.acked) >= count), WAIT_SECONDS
            )
            return len(self.acked)


async def create_blog(http_base: str) -> None:
    async with httpx.AsyncClient(base_url=http_base, timeout=10) as client:
        response = await client.post(
            "/api/v1/blogs", json={"slug": SLUG, "title": "Fault night"}, headers=ADMIN
        )
    assert response.status_code == 201, response.text


async def start_readers(ws_base: str) -> tuple[list[Reader], list[asyncio.Task]]:
    """Readers that each have their `hello`: registered with the hub, nothing missed since."""
    readers = [Reader(ws_base, SLUG) for _ in range(READERS)]
    tasks = [asyncio.create_task(reader.run()) for reader in readers]
    await asyncio.wait_for(asyncio.gather(*(r.greeted.wait() for r in readers)), WAIT_SECONDS)
    assert [r.hello_seq for r in readers] == [0] * READERS
    return readers, tasks


async def stop_tasks(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def log_of_blog(http_base: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=http_base, timeout=10) as client:
        return await read_log(client, SLUG)


async def wait_for_readers(readers: list[Reader], head: int) -> None:
    for reader in readers:
        reader.aim(head)
    try:
        await asyncio.wait_for(asyncio.gather(*(r.reached.wait() for r in readers)), WAIT_SECONDS)
    except TimeoutError:
        behind = [
            (index, r.seqs[-1] if r.seqs else None, r.closes)
            for index, r in enumerate(readers)
            if not r.reached.is_set()
        ]
        pytest.fail(f"readers did not reach head {head}: (index, last seq, closes) {behind}")


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an observable condition until it holds, within WAIT_SECONDS."""

    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), WAIT_SECONDS)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def assert_every_reader_got_the_log(readers: list[Reader], log: list[dict]) -> None:
    head = log[-1]["seq"]
    log_ids = [event["entry"]["id"] for event in log if event["type"] == "entry.created"]
    for index, reader in enumerate(readers):
        assert reader.seqs == list(range(1, head + 1)), (
            f"reader {index}: missing {sorted(set(range(1, head + 1)) - set(reader.seqs))}, "
            f"repeated {sorted({s for s in reader.seqs if reader.seqs.count(s) > 1})}, "
            f"closes {reader.closes}"
        )
        assert reader.entry_ids == log_ids, f"reader {index} saw other entries than the log"


# --- processes -----------------------------------------------------------------


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


def _show_log(path: Path) -> None:
    if path.exists():  # printed in teardown: pytest shows it only when the test failed
        print(f"--- {path.name} (tail) ---\n{path.read_text(errors='replace')[-8000:]}")


@pytest.fixture
def memory_server(postgres_database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "BULLETIN_DATABASE_URL": postgres_database,
        "BULLETIN_ADMIN_TOKEN": ADMIN_TOKEN,
        "BULLETIN_BROKER_URL": "memory://",
        "BULLETIN_RATE_LIMIT_ENABLED": "false",
    }
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        _show_log(server.log_path)


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    directory = tmp_path / "redis"
    directory.mkdir()
    process = RedisProcess(directory)
    try:
        process.start()
        yield process
    finally:
        process.kill()


@pytest.fixture
def two_workers(
    postgres_database: str, redis_process: RedisProcess, tmp_path: Path
) -> Iterator[ServerProcess]:
    env = {
        "BULLETIN_DATABASE_URL": postgres_database,
        "BULLETIN_ADMIN_TOKEN": ADMIN_TOKEN,
        "BULLETIN_BROKER_URL": redis_process.url,
        "BULLETIN_HUB_CHECK_SECONDS": "0.5",
        "BULLETIN_RATE_LIMIT_ENABLED": "false",
    }
    server = ServerProcess(env, tmp_path / "server.log", workers=2)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        _show_log(server.log_path)


async def subscribers(redis_url: str) -> int:
    """How many processes are subscribed to the announcements channel (0 if Redis is away)."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
    try:
        [(_channel, count)] = await client.pubsub_numsub(CHANNEL)
        return count
    except redis.ConnectionError:
        return 0
    finally:
        await client.aclose()


async def scrape_counters(http_base: str, scrapes: int = 12) -> list[dict[str, float]]:
    """Fault counters from several scrapes, each on a new connection (so either worker)."""
    found = []
    for _ in range(scrapes):
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{http_base}/metrics")).text
        found.append(
            {
                name: float(match.group(1))
                for name in ("bulletin_gap_fills_total", "bulletin_broker_failures_total")
                if (match := re.search(rf"^{name} (\S+)$", text, re.MULTILINE))
            }
        )
    return found


# --- tests -----------------------------------------------------------------------


async def test_readers_resuming_after_a_sigkill_get_every_committed_entry_once_in_order(
    memory_server: ServerProcess,
) -> None:
    total, kill_after = 200, 70
    await create_blog(memory_server.http)
    readers, reader_tasks = await start_readers(memory_server.ws)
    publisher = Publisher(memory_server.http, SLUG)
    publishing = asyncio.create_task(publisher.run(count=total))
    try:
        acked_at_kill = await publisher.acked_at_least(kill_after)
        await asyncio.to_thread(memory_server.kill)
        await asyncio.to_thread(memory_server.start)
        await asyncio.wait_for(publishing, WAIT_SECONDS)

        log = await log_of_blog(memory_server.http)
        head = log[-1]["seq"]
        await wait_for_readers(readers, head)
    finally:
        await stop_tasks([publishing, *reader_tasks])

    assert acked_at_kill < total
    assert publisher.failed_attempts > 0, "the publisher never met the dead server"
    assert all(reader.connections >= 2 for reader in readers), "a reader never lost the server"
    created = [event for event in log if event["type"] == "entry.created"]
    assert len(created) == total == head, "idempotent retries must write nothing new"
    assert [event["seq"] for event in log] == list(range(1, head + 1))
    assert [event["entry"]["id"] for event in created] == publisher.acked
    assert_every_reader_got_the_log(readers, log)


async def test_no_reader_misses_an_event_when_redis_restarts_with_two_workers(
    two_workers: ServerProcess, redis_process: RedisProcess
) -> None:
    async def both_workers_subscribed() -> bool:
        return await subscribers(redis_process.url) == 2

    await until(both_workers_subscribed, "both workers to subscribe to Redis")
    await create_blog(two_workers.http)
    readers, reader_tasks = await start_readers(two_workers.ws)
    publisher = Publisher(two_workers.http, SLUG, keep_alive=False)
    done = asyncio.Event()
    publishing = asyncio.create_task(publisher.run(until=done))
    try:
        acked = await publisher.acked_at_least(30)
        await asyncio.to_thread(redis_process.kill)
        await publisher.acked_at_least(acked + 20)  # published while Redis is away
        await asyncio.to_thread(redis_process.start)
        await until(both_workers_subscribed, "both workers to subscribe again after the restart")
        await publisher.acked_at_least(len(publisher.acked) + 30)  # and after it is back
        done.set()
        await asyncio.wait_for(publishing, WAIT_SECONDS)

        log = await log_of_blog(two_workers.http)
        head = log[-1]["seq"]
        await wait_for_readers(readers, head)
        counters = await scrape_counters(two_workers.http)
    finally:
        await stop_tasks([publishing, *reader_tasks])

    assert publisher.failed_attempts == 0, "a broker outage must not fail a publish"
    assert [event["seq"] for event in log] == list(range(1, head + 1))
    assert head == len(publisher.acked)
    assert all(reader.connections == 1 for reader in readers), [r.closes for r in readers]
    assert_every_reader_got_the_log(readers, log)
    assert any(
        scrape.get("bulletin_gap_fills_total", 0) > 0
        or scrape.get("bulletin_broker_failures_total", 0) > 0
        for scrape in counters
    ), counters
