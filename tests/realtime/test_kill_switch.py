"""The kill switch on open and new streams, on each edge and stack: stopping ends every
stream with the restart code and refuses new ones; resuming lets readers back from their
seq with nothing lost."""

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.clients import next_message
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry
from tests.support.servers import LiveServer

STOP = f"/api/v1/blogs/{SLUG}/streams-stop"
RESTART = 1012


async def sse_until_closed(
    client: httpx.AsyncClient, url: str, seqs: list[int], open_: asyncio.Event
) -> None:
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: hello"):
                open_.set()
            elif line.startswith("id: "):
                seqs.append(int(line[4:]))


async def test_stopping_ends_every_stream_with_the_restart_code_and_resuming_loses_nothing(
    server: LiveServer,
) -> None:
    await create_blog(server.client)
    await publish_entry(server.client, body="<p>Polls open</p>")
    sse_seqs: list[int] = []
    sse_open = asyncio.Event()
    async with (
        httpx.AsyncClient(timeout=None) as streaming,
        connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as ws,
    ):
        sse = asyncio.create_task(
            sse_until_closed(
                streaming, f"{server.http}/api/v1/blogs/{SLUG}/sse", sse_seqs, sse_open
            )
        )
        assert await next_message(ws) == {"type": "hello", "seq": 1}
        await asyncio.wait_for(sse_open.wait(), 10)

        assert (await server.client.post(STOP, headers=ADMIN)).status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == RESTART
        await asyncio.wait_for(sse, 10)  # the SSE stream ended

    # While stopped: publishing goes on; new streams are refused and told to come back.
    await publish_entry(server.client, body="<p>First count</p>")
    await publish_entry(server.client, body="<p>Second count</p>")
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=1") as refused:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == RESTART
    answer = await server.client.get(f"/api/v1/blogs/{SLUG}/sse?since=1")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "streams_stopped"
    assert int(answer.headers["retry-after"]) > 0

    assert (await server.client.delete(STOP, headers=ADMIN)).status_code == 200
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=1") as back:
        replayed = [await next_message(back) for _ in range(2)]
        assert [message["seq"] for message in replayed] == [2, 3]
        assert "Second count" in json.dumps(replayed[1])
