"""Readers now and delivery receipts on one process: the route's shape and who may read it."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from tests.support.clients import next_message
from tests.support.errors import assert_error
from tests.support.factories import SLUG, create_blog, publish_entry
from tests.support.people import add_person
from tests.support.servers import EDGES, live_server, served_settings

READERS = f"/api/v1/blogs/{SLUG}/readers"


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 10) -> None:
    """Poll `check` until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await _holds(check):
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def _holds(check: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = check()
    return await result if isinstance(result, Awaitable) else result


async def sse_lines(client: httpx.AsyncClient, url: str, lines: list[str]) -> None:
    async with client.stream("GET", url) as response:
        async for line in response.aiter_lines():
            lines.append(line)


@pytest.mark.parametrize("edge", list(EDGES))
async def test_members_see_the_readers_and_each_events_receipt(
    database_url: str, edge: str
) -> None:
    settings: Settings = served_settings(database_url)
    async with live_server(settings, ws=EDGES[edge]) as server:
        await create_blog(server.client)
        editor = await add_person(server.app, "Eddie Grant", role="editor")
        contributor = await add_person(server.app, "Cora Lind", role="contributor")
        outsider = await add_person(server.app, "Omar Haddad")

        async def readers() -> dict:
            response = await server.client.get(READERS, headers=contributor.headers)
            assert response.status_code == 200, response.text
            assert response.headers["Cache-Control"] == "private, no-store"
            return response.json()

        empty = await readers()
        assert (empty["now"], empty["peak_today"], empty["processes"]) == (0, 0, 1)
        assert empty["recent_events"] == []
        lines: list[str] = []
        async with (
            connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws,
            httpx.AsyncClient(timeout=10) as sse_client,
        ):
            assert (await next_message(ws))["type"] == "hello"
            sse = asyncio.create_task(
                sse_lines(sse_client, f"{server.http}/api/v1/blogs/{SLUG}/sse", lines)
            )
            await eventually(lambda: any("hello" in line for line in lines))
            entry = await publish_entry(server.client, headers=editor.headers, body="<p>Polls</p>")
            assert (await next_message(ws))["entry"]["id"] == entry["id"]
            await eventually(lambda: any("entry.created" in line for line in lines))

            async def receipt_complete() -> bool:
                events = (await readers())["recent_events"]
                return bool(events) and events[-1]["delivered"] == 2

            await eventually(receipt_complete)
            answer = await readers()
            assert (answer["now"], answer["peak_today"]) == (2, 2)
            assert answer["recent_events"] == [
                {
                    "seq": 1,
                    "type": "entry.created",
                    "entry_id": entry["id"],
                    "open": 2,
                    "delivered": 2,
                }
            ]
            sse.cancel()
        await eventually(lambda: readers_now(server.client, editor.headers, 0))
        after = await readers()
        assert (after["now"], after["peak_today"]) == (0, 2)
        assert after["peak_at"] is not None and after["as_of"] is not None

        assert_error(await server.client.get(READERS), 401, "unauthorised")
        assert_error(await server.client.get(READERS, headers=outsider.headers), 403, "forbidden")
        missing = await server.client.get(
            "/api/v1/blogs/no-such-blog/readers", headers=editor.headers
        )
        assert missing.status_code == 404


async def readers_now(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> bool:
    return (await client.get(READERS, headers=headers)).json()["now"] == count
