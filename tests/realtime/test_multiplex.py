"""Several blogs on one stream connection (app/realtime/multiplex.py), on every edge, both
databases and brokers: each blog from its own since, subscribe and unsubscribe messages,
an error per blog that cannot be followed, and the connection closed only for itself."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.config import Settings
from app.realtime.multiplex import (
    MAX_BLOGS_PER_CONNECTION,
    MESSAGES_PER_SECOND,
    TOO_MANY_MESSAGES_REASON,
    MessageBudget,
)
from tests.support.clients import StalledReader, next_message, read_metrics, slow_readers_closed
from tests.support.databases import STACKS
from tests.support.factories import create_blog, publish_entry
from tests.support.servers import EDGES, LiveServer, live_server

STREAMS = "/api/v1/streams"
BIG = "<p>" + "An update long enough to fill a small buffer quickly. " * 40 + "</p>"


@pytest.fixture(params=list(EDGES))
async def server(
    stack_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[LiveServer]:
    async with live_server(stack_settings, EDGES[request.param]) as running:
        await create_blog(running.client, "results", "Results desk")
        await create_blog(running.client, "weather", "Storm watch")
        yield running


async def messages(ws: ClientConnection, count: int) -> list[dict]:
    return [await next_message(ws) for _ in range(count)]


def by_blog(received: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """Each blog's messages as (type, seq), in the order they came."""
    grouped: dict[str, list[tuple[str, int]]] = {}
    for message in received:
        grouped.setdefault(message["blog"], []).append((message["type"], message["seq"]))
    return grouped


async def test_one_websocket_follows_two_blogs_each_from_its_own_since(
    server: LiveServer,
) -> None:
    for number in range(3):
        await publish_entry(server.client, "results", body=f"<p>ward {number}</p>")
    await publish_entry(server.client, "weather", body="<p>wind rising</p>")
    async with connect(f"{server.ws}{STREAMS}/ws?blogs=results:1,weather") as ws:
        caught_up = by_blog(await messages(ws, 4))
        # Each blog from its own since, answered by the head it goes on from.
        assert caught_up == {
            "results": [("entry.created", 2), ("entry.created", 3), ("hello", 3)],
            "weather": [("hello", 1)],
        }
        weather = await publish_entry(server.client, "weather", body="<p>gusts</p>")
        results = await publish_entry(server.client, "results", body="<p>ward 4</p>")
        live = await messages(ws, 2)
        metrics = await read_metrics(server.client)
    assert [(m["blog"], m["seq"], m["entry"]["id"]) for m in live] == [
        ("weather", 2, weather["id"]),
        ("results", 4, results["id"]),
    ]
    # One connection, counted once however many blogs it follows.
    assert sum(v for k, v in metrics.items() if k.startswith("bulletin_readers{")) == 1


async def test_subscribe_and_unsubscribe_messages_change_what_the_connection_follows(
    server: LiveServer,
) -> None:
    await publish_entry(server.client, "results", body="<p>ward 1</p>")
    async with connect(f"{server.ws}{STREAMS}/ws") as ws:
        await ws.send(json.dumps({"subscribe": "results", "since": 0}))
        assert by_blog(await messages(ws, 2)) == {"results": [("entry.created", 1), ("hello", 1)]}
        await ws.send(json.dumps({"unsubscribe": "results"}))
        await ws.send(json.dumps({"subscribe": "weather"}))
        assert by_blog(await messages(ws, 1)) == {"weather": [("hello", 0)]}
        # Published first, so it would arrive first if the connection still followed it.
        await publish_entry(server.client, "results", body="<p>ward 2</p>")
        await publish_entry(server.client, "weather", body="<p>calm</p>")
        assert by_blog(await messages(ws, 1)) == {"weather": [("entry.created", 1)]}
        # Subscribing again resumes from the new since.
        await ws.send(json.dumps({"subscribe": "results", "since": 1}))
        assert by_blog(await messages(ws, 2)) == {"results": [("entry.created", 2), ("hello", 2)]}


async def test_a_missing_or_reset_blog_gets_its_own_error_and_the_others_go_on(
    server: LiveServer,
) -> None:
    async with connect(f"{server.ws}{STREAMS}/ws?blogs=no-such-blog,results:99,weather") as ws:
        first = await messages(ws, 3)
        errors = {m["blog"]: m["code"] for m in first if m["type"] == "error"}
        assert errors == {"no-such-blog": 4504, "results": 4509}
        assert [m for m in first if m["type"] == "hello"] == [
            {"type": "hello", "blog": "weather", "seq": 0}
        ]
        await publish_entry(server.client, "weather", body="<p>still here</p>")
        assert by_blog(await messages(ws, 1)) == {"weather": [("entry.created", 1)]}
        # The slot a refused blog took is free again: it can be asked for once more.
        await ws.send(json.dumps({"subscribe": "results"}))
        assert by_blog(await messages(ws, 1)) == {"results": [("hello", 0)]}


@pytest.mark.parametrize(
    "message",
    [
        json.dumps({"publish": "results"}),
        json.dumps({"subscribe": "results", "since": "4"}),
        json.dumps({"subscribe": "results", "since": -1}),
        b'{"subscribe": "results"}',  # binary
        "not json",
    ],
    ids=["unknown", "since-as-text", "negative-since", "binary", "not-json"],
)
async def test_anything_but_subscribe_or_unsubscribe_closes_the_connection_with_4501(
    server: LiveServer, message: str | bytes
) -> None:
    async with connect(f"{server.ws}{STREAMS}/ws?blogs=weather") as ws:
        await next_message(ws)
        await ws.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            await messages(ws, 1)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4501


async def test_a_connection_follows_at_most_twenty_blogs(server: LiveServer) -> None:
    many = ",".join(f"blog-{n}" for n in range(MAX_BLOGS_PER_CONNECTION + 1))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws}{STREAMS}/ws?blogs={many}"):
            pass
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_blogs"
    desk = [f"ward-{n}" for n in range(MAX_BLOGS_PER_CONNECTION)]
    for slug in desk:
        await create_blog(server.client, slug, "A ward's count")
    async with connect(f"{server.ws}{STREAMS}/ws?blogs={','.join(desk)}") as ws:
        hellos = await messages(ws, MAX_BLOGS_PER_CONNECTION)
        assert sorted(m["blog"] for m in hellos) == sorted(desk)
        await ws.send(json.dumps({"subscribe": "weather"}))
        over = await next_message(ws)
        assert (over["type"], over["blog"], over["code"]) == ("error", "weather", 4500)
        # The connection goes on with the twenty it has.
        await publish_entry(server.client, "ward-3", body="<p>counted</p>")
        assert by_blog(await messages(ws, 1)) == {"ward-3": [("entry.created", 1)]}


class HandTurnedClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_of_subscribes_is_served_and_a_flood_past_it_closes_with_4008(
    server: LiveServer,
) -> None:
    clock = HandTurnedClock()
    server.app.state.services.hub.clock = clock
    desk = [f"ward-{n}" for n in range(MAX_BLOGS_PER_CONNECTION)]
    for slug in desk:
        await create_blog(server.client, slug, "A ward's count")
    await publish_entry(server.client, "ward-0", body="<p>first count</p>")
    async with (
        connect(f"{server.ws}{STREAMS}/ws?blogs=weather") as bystander,
        connect(f"{server.ws}{STREAMS}/ws") as flooder,
    ):
        assert (await next_message(bystander))["type"] == "hello"
        # A tab handing its connection over asks for every blog, then for each again with its
        # since: twice the blog cap, all at once while the clock stands still, all answered.
        for since in (None, 0):
            for slug in desk:
                await flooder.send(json.dumps({"subscribe": slug, "since": since}))
            answered = await messages(flooder, MAX_BLOGS_PER_CONNECTION + (since == 0))
            hellos = {m["blog"]: m["seq"] for m in answered if m["type"] == "hello"}
            assert hellos == {slug: 1 if slug == "ward-0" else 0 for slug in desk}
        # The budget refills with time: half a second buys one more message.
        clock.now += 1 / MESSAGES_PER_SECOND
        await flooder.send(json.dumps({"subscribe": "ward-0", "since": 0}))
        assert by_blog(await messages(flooder, 2)) == {
            "ward-0": [("entry.created", 1), ("hello", 1)]
        }
        # Nothing is left: the first message of a flood closes the connection.
        flood = [json.dumps({"subscribe": desk[n % len(desk)], "since": 0}) for n in range(200)]
        with contextlib.suppress(ConnectionClosed):  # it may see the close before the end
            for message in flood:
                await flooder.send(message)
        during = await publish_entry(server.client, "weather", body="<p>gusts</p>")
        with pytest.raises(ConnectionClosed) as closed:
            await messages(flooder, 1)
        after = await publish_entry(server.client, "weather", body="<p>calm</p>")
        # The other reader on the server never noticed.
        seen = await messages(bystander, 2)
        samples = await read_metrics(server.client)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4008, TOO_MANY_MESSAGES_REASON)
    assert [(m["type"], m["entry"]["id"]) for m in seen] == [
        ("entry.created", during["id"]),
        ("entry.created", after["id"]),
    ]
    # One refusal: nothing the flooder sent after the first message past its budget was read.
    assert samples['bulletin_rate_limit_refusals_total{kind="stream_messages"}'] == 1


def test_a_message_budget_refills_at_its_rate_up_to_its_burst() -> None:
    clock = HandTurnedClock()
    budget = MessageBudget(burst=3, per_second=2.0, clock=clock)
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.4  # not yet a whole message
    assert not budget.spend()
    clock.now += 0.1
    assert [budget.spend(), budget.spend()] == [True, False]
    clock.now += 3600  # an idle hour is still only a burst
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(
    ("blogs", "status", "code"),
    [
        ("results,results", 400, "invalid_blogs"),
        ("results:x", 400, "invalid_since"),
        ("", 422, "invalid_input"),
    ],
)
async def test_a_malformed_blog_list_is_refused_with_a_json_error(
    server: LiveServer, blogs: str, status: int, code: str
) -> None:
    response = await server.client.get(f"{STREAMS}/sse", params={"blogs": blogs})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if blogs:  # WebSocket may start with no blogs and subscribe later
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{server.ws}{STREAMS}/ws?blogs={blogs}"):
                pass
        assert refused.value.response.status_code == 400


async def test_sse_follows_blogs_from_their_since_pairs_with_an_error_event_per_refused_blog(
    server: LiveServer,
) -> None:
    await publish_entry(server.client, "results", body="<p>ward 1</p>")
    await publish_entry(server.client, "results", body="<p>ward 2</p>")
    url = f"{STREAMS}/sse?blogs=results:1,weather:0,no-such-blog"
    received: list[tuple[str, dict]] = []
    async with server.client.stream("GET", url) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        name = ""

        async def next_event() -> tuple[str, dict]:
            nonlocal name
            async for line in lines:
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name != "heartbeat":
                    return name, json.loads(line.removeprefix("data: "))
            raise AssertionError("the stream ended")

        for _ in range(4):
            received.append(await asyncio.wait_for(next_event(), 10))
        await publish_entry(server.client, "weather", body="<p>fog</p>")
        received.append(await asyncio.wait_for(next_event(), 10))
    names = [(kind, event.get("blog"), event.get("seq")) for kind, event in received]
    assert [name for name in names if name[1] == "results"] == [
        ("entry.created", "results", 2),
        ("hello", "results", 2),
    ]
    assert [name for name in names if name[1] == "weather"] == [
        ("hello", "weather", 0),
        ("entry.created", "weather", 1),
    ]
    assert ("blog.error", "no-such-blog", None) in names
    error = next(event for kind, event in received if kind == "blog.error")
    assert error["code"] == 4504


@pytest.mark.parametrize("edge", list(EDGES))
async def test_a_connection_that_falls_behind_is_closed_as_one_with_resume(
    stack_settings: Settings, edge: str
) -> None:
    small = stack_settings.model_copy(update={"reader_buffer_bytes": 64 * 1024})
    async with live_server(small, EDGES[edge]) as server:
        await create_blog(server.client, "results", "Results desk")
        await create_blog(server.client, "weather", "Storm watch")
        await fall_behind_and_be_closed(server)


async def fall_behind_and_be_closed(server: LiveServer) -> None:
    path = f"{STREAMS}/ws?blogs=results,weather"
    stalled = await asyncio.to_thread(StalledReader, server.port, path)
    try:
        published = 0
        while await slow_readers_closed(server.client) == 0:
            assert published < 300, "the stalled connection was never cut off"
            await publish_entry(server.client, "results", body=BIG)
            published += 1
        _seqs, code = await asyncio.to_thread(stalled.read_events_until_close)
    finally:
        stalled.close()
    assert code == 4000
    # Out of every blog's channel: the other blog's readers are not written to it.
    await publish_entry(server.client, "weather", body="<p>after</p>")
    assert (await read_metrics(server.client)).get(
        'bulletin_readers{form="websocket_frame"}', 0
    ) == 0


# Two servers share events only through the broker: Redis, on PostgreSQL.
@pytest.mark.parametrize("stack", [STACKS["postgresql-redis"]], ids=["postgresql-redis"])
async def test_a_reader_on_one_server_follows_blogs_published_on_another_through_redis(
    stack_settings: Settings,
) -> None:
    # The log check is an hour away: only the broker can deliver in time.
    quiet = stack_settings.model_copy(update={"hub_check_seconds": 3600.0})
    async with live_server(quiet) as one, live_server(quiet) as two:
        await create_blog(one.client, "results", "Results desk")
        await create_blog(one.client, "weather", "Storm watch")
        async with connect(f"{two.ws}{STREAMS}/ws?blogs=results,weather") as ws:
            assert {m["blog"] for m in await messages(ws, 2)} == {"results", "weather"}
            published = [
                await publish_entry(one.client, slug, body=f"<p>{slug} {n}</p>")
                for n in range(3)
                for slug in ("results", "weather")
            ]
            received = await messages(ws, len(published))
    assert [(m["blog"], m["entry"]["id"]) for m in received] == [
        (entry["blog"], entry["id"]) for entry in published
    ]
