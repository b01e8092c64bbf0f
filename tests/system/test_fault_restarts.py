"""Fault tests on real processes: readers keep exactly-once, in-order delivery across a
SIGKILLed server and across a Redis restart under two workers.

Every wait is on something observable (a message, an acknowledged POST, a process
answering, Redis reporting subscribers) and every wait is bounded.
"""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis

from tests.support.clients import Reader, all_reach, read_metrics, start_readers, stop_tasks
from tests.support.databases import fresh_database
from tests.support.factories import create_blog, read_log
from tests.support.fleet import Publisher
from tests.support.servers import RedisProcess, ServerProcess, serve_environment
from tests.support.waiting import eventually

SLUG = "fault-night"
READERS = 20
WAIT_SECONDS = 30


# --- clients -------------------------------------------------------------------


async def start_blog_readers(ws_base: str) -> tuple[list[Reader], list[asyncio.Task]]:
    """Readers that each have their `hello`: registered with the hub, nothing missed since."""
    readers = [Reader(ws_base, SLUG, open_timeout=10, backoff=(0.05, 0.15)) for _ in range(READERS)]
    tasks = await start_readers(readers, timeout=WAIT_SECONDS)
    assert [r.hello_seq for r in readers] == [0] * READERS
    return readers, tasks


async def log_of_blog(http_base: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=http_base, timeout=10) as client:
        return await read_log(client, SLUG)


async def create_fault_blog(http_base: str) -> None:
    async with httpx.AsyncClient(base_url=http_base, timeout=10) as client:
        await create_blog(client, SLUG, "Fault night")


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


@pytest.fixture
def memory_server(postgres_database: str, serve: Callable[..., ServerProcess]) -> ServerProcess:
    return serve(serve_environment(postgres_database, broker_url="memory://"))


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
    postgres_database: str, redis_process: RedisProcess, serve: Callable[..., ServerProcess]
) -> ServerProcess:
    """Two workers on one port, announcing through the private Redis (stopped before it)."""
    env = serve_environment(
        postgres_database, broker_url=redis_process.url, hub_check_seconds="0.5"
    )
    return serve(env, workers=2)


async def subscribers(redis_url: str) -> int:
    """How many processes are subscribed to announcements on this (test's own) Redis, 0 if
    it is away."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
    try:
        channels = await client.pubsub_channels("bulletin:*:events")
        if not channels:
            return 0
        return sum(count for _channel, count in await client.pubsub_numsub(*channels))
    except redis.ConnectionError:
        return 0
    finally:
        await client.aclose()


async def scrape_counters(http_base: str, scrapes: int = 12) -> list[dict[str, float]]:
    """Fault counters from several scrapes, each on a new connection (so either worker)."""
    found = []
    for _ in range(scrapes):
        async with httpx.AsyncClient(base_url=http_base, timeout=5) as client:
            metrics = await read_metrics(client)
        found.append(
            {
                name: metrics[name]
                for name in ("bulletin_gap_fills_total", "bulletin_broker_failures_total")
                if name in metrics
            }
        )
    return found


# --- tests -----------------------------------------------------------------------


async def test_readers_resuming_after_a_sigkill_get_every_committed_entry_once_in_order(
    memory_server: ServerProcess,
) -> None:
    total, kill_after = 200, 70
    await create_fault_blog(memory_server.http)
    readers, reader_tasks = await start_blog_readers(memory_server.ws)
    publisher = Publisher(memory_server.http, SLUG, keep_alive=True)
    publishing = asyncio.create_task(publisher.run(count=total))
    try:
        acked_at_kill = await publisher.acked_at_least(kill_after)
        await asyncio.to_thread(memory_server.kill)
        await asyncio.to_thread(memory_server.start)
        await asyncio.wait_for(publishing, WAIT_SECONDS)

        log = await log_of_blog(memory_server.http)
        head = log[-1]["seq"]
        await all_reach(readers, head, WAIT_SECONDS)
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

    await eventually(both_workers_subscribed, WAIT_SECONDS, "both workers to subscribe to Redis")
    await create_fault_blog(two_workers.http)
    readers, reader_tasks = await start_blog_readers(two_workers.ws)
    publisher = Publisher(two_workers.http, SLUG, keep_alive=False)
    done = asyncio.Event()
    publishing = asyncio.create_task(publisher.run(until=done))
    try:
        acked = await publisher.acked_at_least(30)
        await asyncio.to_thread(redis_process.kill)
        await publisher.acked_at_least(acked + 20)  # published while Redis is away
        await asyncio.to_thread(redis_process.start)
        await eventually(
            both_workers_subscribed, WAIT_SECONDS, "both workers to subscribe again after a restart"
        )
        await publisher.acked_at_least(len(publisher.acked) + 30)  # and after it is back
        done.set()
        await asyncio.wait_for(publishing, WAIT_SECONDS)

        log = await log_of_blog(two_workers.http)
        head = log[-1]["seq"]
        await all_reach(readers, head, WAIT_SECONDS)
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
