"""Delivery across processes and from the log: the broker is a doorbell, the log is the truth."""

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from app.db import Database
from app.publishing import Publisher
from app.rendering import Renderer
from app.schemas import EntryCreate
from tests.support.clients import StalledReader, next_message, slow_readers_closed
from tests.support.databases import STACKS
from tests.support.factories import SLUG, create_blog, publish_entry
from tests.support.servers import EDGES, live_server

BIG = "<p>" + "An update long enough to fill a small buffer quickly. " * 40 + "</p>"


@pytest.fixture(params=list(STACKS))
def stack(request: pytest.FixtureRequest) -> tuple[str, str]:
    return STACKS[request.param]


async def test_a_reader_on_one_server_gets_entries_published_on_another(
    stack_settings: Settings,
) -> None:
    # With a shared broker, only the broker can deliver in time: the check is an hour away.
    shared = not stack_settings.broker_url.startswith("memory")
    quiet = stack_settings.model_copy(update={"hub_check_seconds": 3600.0 if shared else 0.2})
    async with live_server(quiet) as one, live_server(quiet) as two:
        await create_blog(one.client)
        async with connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws", max_size=None) as ws:
            assert (await next_message(ws))["type"] == "hello"
            entries = [
                await publish_entry(one.client, body=f"<p>from one {n}</p>") for n in range(4)
            ]
            # Too big for a NOTIFY payload: announced by seq, read from the log.
            entries.append(await publish_entry(one.client, body=f"<p>{'large ' * 3000}</p>"))
            events = [await next_message(ws) for _ in entries]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["entry"]["id"] for e in events] == [e["id"] for e in entries]


async def test_an_entry_committed_without_any_announcement_still_reaches_readers(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server:
        await create_blog(server.client)
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws:
            await next_message(ws)
            await publish_entry(server.client, body="<p>announced</p>")
            # Another writer (a CLI, a process whose broker was down) commits silently.
            database = Database(stack_settings.database_url)
            try:
                silent = Publisher(database, Renderer())
                await silent.create_entry(SLUG, EntryCreate(body="<p>silent 1</p>"))
                await silent.create_entry(SLUG, EntryCreate(body="<p>silent 2</p>"))
            finally:
                await database.dispose()
            await publish_entry(server.client, body="<p>announced again</p>")
            events = [await next_message(ws) for _ in range(4)]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert ["silent 1" in e["html"] for e in events] == [False, True, False, False]


async def test_sse_without_since_starts_with_hello_carrying_the_head_as_its_id(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server:
        await create_blog(server.client)
        await publish_entry(server.client, body="<p>before</p>")
        url = f"{server.http}/api/v1/blogs/{SLUG}/sse"
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("GET", url) as response,
        ):
            lines = []
            async for line in response.aiter_lines():
                lines.append(line)
                if line.startswith("data: "):
                    break
    assert lines[-3:] == ["id: 1", "event: hello", 'data: {"type":"hello","seq":1}']


@pytest.mark.parametrize("edge", list(EDGES))
async def test_a_reader_that_stops_reading_is_closed_with_resume_and_can_resume(
    stack_settings: Settings, edge: str
) -> None:
    small = stack_settings.model_copy(update={"reader_buffer_bytes": 16_384})
    async with live_server(small, EDGES[edge]) as server:
        await create_blog(server.client)
        # In a thread: its blocking handshake must not stall the loop the server runs on.
        path = f"/api/v1/blogs/{SLUG}/ws?since=0"
        stalled = await asyncio.to_thread(StalledReader, server.port, path)
        published = 0
        while await slow_readers_closed(server.client) == 0:
            assert published < 300, "the stalled reader was never cut off"
            await publish_entry(server.client, body=BIG)
            published += 1
        seqs, code = await asyncio.to_thread(stalled.read_events_until_close)
        stalled.close()
        assert code == 4000
        assert seqs == list(range(1, len(seqs) + 1))
        # Resuming from its last seq, it gets the rest: nothing lost, nothing twice.
        resume_url = f"{server.ws}/api/v1/blogs/{SLUG}/ws?since={seqs[-1] if seqs else 0}"
        async with connect(resume_url, max_size=None) as ws:
            rest = [(await next_message(ws))["seq"] for _ in range(published - len(seqs))]
        assert seqs + rest == list(range(1, published + 1))


async def test_a_reader_resuming_on_a_process_that_is_behind_gets_nothing_twice(
    stack_settings: Settings,
) -> None:
    # Two processes that cannot hear each other and rarely check the log: `two` falls behind.
    deaf = stack_settings.model_copy(
        update={"broker_url": "memory://", "hub_check_seconds": 3600.0}
    )
    async with live_server(deaf) as one, live_server(deaf) as two:
        await create_blog(one.client)
        async with connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws") as early:
            await next_message(early)  # `two` now follows the blog, at seq 0
            for number in range(5):
                await publish_entry(one.client, body=f"<p>on one {number}</p>")
            async with connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws?since=5") as resumed:
                await publish_entry(two.client, body="<p>on two</p>")
                assert (await next_message(resumed))["seq"] == 6
            assert [(await next_message(early))["seq"] for _ in range(6)] == [1, 2, 3, 4, 5, 6]
