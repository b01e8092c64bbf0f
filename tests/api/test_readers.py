"""Readers now and delivery receipts on one process: the route's shape and who may read it."""

import asyncio
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from tests.support.clients import next_message
from tests.support.errors import assert_error
from tests.support.factories import SLUG, create_blog, publish_entry
from tests.support.people import add_person
from tests.support.servers import EDGES, live_server, served_settings
from tests.support.waiting import eventually

READERS = f"/api/v1/blogs/{SLUG}/readers"


async def sse_lines(
    client: httpx.AsyncClient, url: str, lines: list[str], headers: dict[str, str] | None = None
) -> None:
    async with client.stream("GET", url, headers=headers) as response:
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

        async def readers() -> dict[str, Any]:
            response = await server.client.get(READERS, headers=contributor.headers)
            assert response.status_code == 200, response.text
            assert response.headers["Cache-Control"] == "private, no-store"
            body: dict[str, Any] = response.json()
            return body

        empty = await readers()
        assert (empty["now"], empty["peak_today"], empty["processes"]) == (0, 0, 1)
        assert empty["recent_events"] == []
        lines: list[str] = []
        desk: list[str] = []
        async with (
            connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws,
            httpx.AsyncClient(timeout=10) as sse_client,
        ):
            assert (await next_message(ws))["type"] == "hello"
            sse = asyncio.create_task(
                sse_lines(sse_client, f"{server.http}/api/v1/blogs/{SLUG}/sse", lines)
            )
            # A member's newsroom stream follows the same events, but is not a reader.
            newsroom = asyncio.create_task(
                sse_lines(
                    sse_client,
                    f"{server.http}/api/v1/blogs/{SLUG}/newsroom/sse",
                    desk,
                    editor.headers,
                )
            )
            await eventually(lambda: any("hello" in line for line in lines), 10, "SSE hello")
            await eventually(lambda: any("hello" in line for line in desk), 10, "newsroom hello")
            entry = await publish_entry(server.client, headers=editor.headers, body="<p>Polls</p>")
            assert (await next_message(ws))["entry"]["id"] == entry["id"]
            await eventually(lambda: any("entry.created" in x for x in lines), 10, "SSE event")
            await eventually(lambda: any("entry.created" in x for x in desk), 10, "desk event")
            answer = await eventually(
                readers,
                10,
                "a complete receipt",
                holds=lambda a: [e["delivered"] for e in a["recent_events"]] == [2],
            )
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
            newsroom.cancel()
        after = await eventually(readers, 10, "no readers", holds=lambda a: a["now"] == 0)
        assert (after["now"], after["peak_today"]) == (0, 2)
        assert after["peak_at"] is not None and after["as_of"] is not None

        assert_error(await server.client.get(READERS), 401, "unauthorised")
        assert_error(await server.client.get(READERS, headers=outsider.headers), 403, "forbidden")
        missing = await server.client.get(
            "/api/v1/blogs/no-such-blog/readers", headers=editor.headers
        )
        assert missing.status_code == 404
