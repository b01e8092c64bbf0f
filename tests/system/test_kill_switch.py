"""The kill switch over two `bulletin serve` processes on PostgreSQL and Redis: turned on
through one, it ends the streams of the other; the console of either counts both's readers."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.databases import REDIS_URL, fresh_database
from tests.support.factories import ADMIN, create_blog, publish_entry
from tests.support.servers import ServerProcess, serve_environment
from tests.support.waiting import eventually

SLUG = "stop-night"
RESTART = 1012


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


async def test_a_stop_through_one_process_ends_the_streams_of_the_other(
    postgres_database: str, serve: Callable[..., ServerProcess]
) -> None:
    env = serve_environment(
        postgres_database,
        broker_url=REDIS_URL,
        readers_report_seconds="0.5",
        hub_check_seconds="0.2",
    )
    one, two = serve(env, name="one"), serve(env, name="two")
    async with httpx.AsyncClient(base_url=one.http, timeout=10) as client:
        await create_blog(client, SLUG)
        await publish_entry(client, SLUG, body="<p>Polls open</p>")
        async with (
            connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws") as far,
            connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws") as also_far,
        ):
            for ws in (far, also_far):
                assert json.loads(await ws.recv()) == {"type": "hello", "seq": 1}

            async def console_readers() -> int:
                answer = await client.get("/api/v1/console", headers=ADMIN)
                blog = next(b for b in answer.json()["blogs"] if b["slug"] == SLUG)
                return int(blog["readers_now"])

            # Process one has no reader of its own: it counts process two's.
            await eventually(
                console_readers, 10, "two readers counted", holds=lambda count: count == 2
            )

            stopped = await client.post(f"/api/v1/blogs/{SLUG}/streams-stop", headers=ADMIN)
            assert stopped.status_code == 200, stopped.text
            for ws in (far, also_far):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == RESTART

        await publish_entry(client, SLUG, body="<p>Counted while stopped</p>")
        resumed = await client.delete(f"/api/v1/blogs/{SLUG}/streams-stop", headers=ADMIN)
        assert resumed.status_code == 200

        async def resume_on_two() -> dict:
            # Process two lets readers in again at its next check of the heads.
            async with connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws?since=1") as back:
                return json.loads(await asyncio.wait_for(back.recv(), 10))

        async def resumed_message() -> dict | None:
            try:
                return await resume_on_two()
            except ConnectionClosed:
                return None

        message = await eventually(
            resumed_message, 10, "a reader let in again", holds=lambda m: m is not None
        )
        assert message is not None and message["seq"] == 2
        assert "Counted while stopped" in message["html"]
