"""Faults under load, against a real `bulletin serve` process on PostgreSQL."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.clients import (
    Reader,
    StalledReader,
    all_reach,
    slow_readers_closed,
    start_readers,
    stop_tasks,
)
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN, create_blog, publish_entry
from tests.support.servers import ServerProcess, serve_environment

SLUG = "deploy-day"
BODY = "<p>" + "An update of about one and a half kilobytes. " * 34 + "</p>"


@pytest.fixture
def server_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    database_url = fresh_database("postgresql", request, tmp_path)
    return serve_environment(database_url, broker_url="memory://")


async def test_a_reader_that_never_reads_is_cut_off_while_a_thousand_others_keep_up(
    server_env: dict[str, str], serve: Callable[..., ServerProcess]
) -> None:
    server = serve({**server_env, "BULLETIN_READER_BUFFER_BYTES": "65536"})
    async with httpx.AsyncClient(base_url=server.http, headers=ADMIN, timeout=30) as client:
        await create_blog(client, SLUG, "Deploy day")
        stalled = StalledReader(server.port, f"/api/v1/blogs/{SLUG}/ws")
        readers = [Reader(server.ws, SLUG) for _ in range(1000)]
        tasks = await start_readers(readers)
        published = 0

        cut_off_at = None
        while published < 400 and cut_off_at is None:
            await publish_entry(client, SLUG, body=BODY)
            published += 1
            # The broadcast never waits for the stalled reader: each event reaches
            # all thousand readers before the next one is published.
            await all_reach(readers, published, 20)
            if await slow_readers_closed(client) >= 1:
                cut_off_at = published
        assert cut_off_at is not None, "the stalled reader was never cut off"
        for _ in range(5):
            await publish_entry(client, SLUG, body=BODY)
            published += 1
            await all_reach(readers, published, 20)

        for reader in readers:
            assert reader.seqs == list(range(1, published + 1))
            assert reader.connections == 1
        # Once it reads again, the stalled reader learns why it was cut off.
        code = await asyncio.to_thread(stalled.read_until_close)
        stalled.close()
        assert code == 4000
        await stop_tasks(tasks)


async def test_two_thousand_readers_resuming_at_once_after_a_deploy_miss_nothing(
    server_env: dict[str, str], serve: Callable[..., ServerProcess]
) -> None:
    server = serve(server_env)
    async with httpx.AsyncClient(base_url=server.http, headers=ADMIN, timeout=30) as client:

        async def publish(count: int) -> None:
            for _ in range(count):
                await publish_entry(client, SLUG, body=BODY)

        await create_blog(client, SLUG, "Deploy day")
        await publish(10)
        readers = [Reader(server.ws, SLUG, since=0) for _ in range(2000)]
        tasks = await start_readers(readers, parallel=250)
        await all_reach(readers, 10, 60)

        # The deploy: the server goes away and comes back; every reader resumes at once.
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        await publish(20)
        head = (await client.get(f"/api/v1/blogs/{SLUG}")).json()["head_seq"]
        assert head == 30
        await all_reach(readers, head, 120)
        for reader in readers:
            assert reader.seqs == list(range(1, head + 1))
            assert reader.connections >= 2
        await stop_tasks(tasks)
