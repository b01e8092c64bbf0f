"""A redaction reaches every process's memory: resumes over WebSocket and SSE, from any
process, replay the rewritten log, never the text that was taken back."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from app.schemas import BlogCreate, EntryCreate
from tests.support.databases import REDIS_URL, fresh_database
from tests.support.servers import live_server, served_settings

SLUG = "quarry-collapse"
SECRET = "Named source: Jane Roe, 12 Elm St"


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


async def ws_replay(ws_base: str, until_seq: int) -> list[dict]:
    events = []
    async with connect(f"{ws_base}/api/v1/blogs/{SLUG}/ws?since=0") as stream:
        while not events or events[-1]["seq"] < until_seq:
            message = json.loads(await asyncio.wait_for(stream.recv(), 10))
            if message["type"] != "heartbeat":
                events.append(message)
    return events


async def sse_replay(http_base: str, until_seq: int) -> list[dict]:
    events: list[dict] = []
    async with (
        httpx.AsyncClient(base_url=http_base, timeout=10) as client,
        client.stream("GET", f"/api/v1/blogs/{SLUG}/sse?since=0") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                message = json.loads(line[len("data: ") :])
                if message["type"] != "heartbeat":
                    events.append(message)
                    if message["seq"] >= until_seq:
                        break
    return events


@pytest.fixture
async def two_processes(postgres_database: str) -> AsyncIterator[tuple]:
    settings = served_settings(postgres_database, broker_url=REDIS_URL, hub_check_seconds=0.2)
    async with live_server(settings) as a, live_server(settings) as b:
        yield a, b


async def test_resumes_from_every_process_replay_the_rewritten_log_after_a_delete(
    two_processes: tuple,
) -> None:
    a, b = two_processes
    publisher = a.app.state.services.publisher
    await publisher.create_blog(BlogCreate(slug=SLUG, title="Quarry collapse"))
    async with connect(f"{b.ws}/api/v1/blogs/{SLUG}/ws") as watching:  # B follows the blog
        assert json.loads(await watching.recv())["type"] == "hello"
        entry, _replayed = await publisher.create_entry(
            SLUG, EntryCreate(headline=SECRET, body="<p>Rescue under way.</p>")
        )
        first = json.loads(await asyncio.wait_for(watching.recv(), 10))
        assert SECRET in first["html"]  # B's memory of the blog now holds it
        assert SECRET in str(await ws_replay(b.ws, 1))

        await publisher.delete_entry(SLUG, entry.id)
        later = [json.loads(await asyncio.wait_for(watching.recv(), 10)) for _ in range(2)]
        assert [event["type"] for event in later] == ["entry.deleted", "entry.redacted"]

    for server in (a, b):
        for replay in (await ws_replay(server.ws, 3), await sse_replay(server.http, 3)):
            assert [event["seq"] for event in replay] == [1, 2, 3]
            assert SECRET not in str(replay)
            assert replay[0]["entry"]["status"] == "deleted"
