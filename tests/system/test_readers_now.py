"""Readers now and delivery receipts over two `bulletin serve` processes on Redis: each
counts its own streams and reports them; either answers for both."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.databases import REDIS_URL, fresh_database
from tests.support.factories import ADMIN, create_blog, publish_entry
from tests.support.servers import ServerProcess, serve_environment
from tests.support.waiting import eventually

SLUG = "count-night"
READERS = f"/api/v1/blogs/{SLUG}/readers"
PERIOD = 0.5


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


class SseReader:
    """An SSE stream read line by line, keeping the ids of the events it was sent."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.seqs: list[int] = []
        self.attached = asyncio.Event()
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read(client, url))

    async def _read(self, client: httpx.AsyncClient, url: str) -> None:
        async with client.stream("GET", url) as response:
            async for line in response.aiter_lines():
                if line.startswith("event: hello"):
                    self.attached.set()
                elif line.startswith("id: ") and self.attached.is_set():
                    self.seqs.append(int(line[4:]))
                    self.changed.set()

    async def reach(self, seq: int) -> None:
        while seq not in self.seqs:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


async def ws_reader(base: str) -> ClientConnection:
    ws = await connect(f"{base}/api/v1/blogs/{SLUG}/ws")
    assert json.loads(await ws.recv())["type"] == "hello"
    return ws


async def ws_reach(ws: ClientConnection, seq: int) -> None:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("seq") == seq and message["type"] != "heartbeat":
            return


async def member_token(client: httpx.AsyncClient, name: str, role: str | None) -> dict:
    login = f"{name.lower()}@news.test"
    user = await client.post(
        "/api/v1/users",
        json={"name": name, "login": login, "password": "a long enough password"},
        headers=ADMIN,
    )
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    if role is not None:
        put = await client.put(
            f"/api/v1/blogs/{SLUG}/members/{user_id}", json={"role": role}, headers=ADMIN
        )
        assert put.status_code == 201, put.text
    token = await client.post(
        "/api/v1/tokens", json={"name": name, "user_id": user_id}, headers=ADMIN
    )
    assert token.status_code == 201, token.text
    return {"Authorization": f"Bearer {token.json()['secret']}"}


async def test_readers_and_receipts_are_summed_over_two_processes(
    postgres_database: str, serve: Callable[..., ServerProcess]
) -> None:
    env = serve_environment(
        postgres_database, broker_url=REDIS_URL, readers_report_seconds=str(PERIOD)
    )
    one, two = serve(env, name="one"), serve(env, name="two")
    async with (
        httpx.AsyncClient(base_url=one.http, timeout=10) as client_one,
        httpx.AsyncClient(base_url=two.http, timeout=10) as client_two,
        httpx.AsyncClient(timeout=None) as streaming,
    ):
        await create_blog(client_one, SLUG)
        member = await member_token(client_one, "Cora", "contributor")
        outsider = await member_token(client_one, "Omar", None)

        async def readers(client: httpx.AsyncClient) -> dict:
            response = await client.get(READERS, headers=member)
            assert response.status_code == 200, response.text
            assert response.headers["Cache-Control"] == "private, no-store"
            body: dict = response.json()
            return body

        # Three WebSocket and two SSE readers on one process, two and two on the other.
        sockets = [await ws_reader(one.ws) for _ in range(3)]
        sockets += [await ws_reader(two.ws) for _ in range(2)]
        sse = [SseReader(streaming, f"{one.http}/api/v1/blogs/{SLUG}/sse") for _ in range(2)]
        sse += [SseReader(streaming, f"{two.http}/api/v1/blogs/{SLUG}/sse") for _ in range(2)]
        await asyncio.wait_for(asyncio.gather(*(r.attached.wait() for r in sse)), 10)
        total = len(sockets) + len(sse)

        for client in (client_one, client_two):
            # Within one period (and the time a request takes) both processes are summed.
            answer = await eventually(
                lambda c=client: readers(c),
                PERIOD * 3,
                f"{total} readers",
                holds=lambda a: a["now"] == total,
            )
            assert answer["processes"] == 2
            assert answer["peak_today"] == total

        entry = await publish_entry(client_two, SLUG, body="<p>Correction: 71%</p>")
        # Every reader confirms the event by reading it off its own socket.
        await asyncio.gather(*(ws_reach(ws, 1) for ws in sockets), *(r.reach(1) for r in sse))
        for client in (client_one, client_two):
            receipts = await eventually(
                lambda c=client: readers(c),
                PERIOD * 4,
                "a complete receipt",
                holds=lambda a: (
                    [(e["open"], e["delivered"]) for e in a["recent_events"]] == [(total, total)]
                ),
            )
            assert receipts["recent_events"][0]["entry_id"] == entry["id"]
            assert receipts["recent_events"][0]["type"] == "entry.created"

        # Two leave one process and one the other: the count drops, the day's peak stays.
        for ws in sockets[:2]:
            await ws.close()
        sse[-1].task.cancel()
        for client in (client_one, client_two):
            answer = await eventually(
                lambda c=client: readers(c),
                PERIOD * 3 + 2,
                f"{total - 3} readers",
                holds=lambda a: a["now"] == total - 3,
            )
            assert answer["peak_today"] == total

        assert (await client_two.get(READERS)).status_code == 401
        assert (await client_two.get(READERS, headers=outsider)).status_code == 403
        for ws in sockets[2:]:
            await ws.close()
        for reader in sse[:-1]:
            reader.task.cancel()
