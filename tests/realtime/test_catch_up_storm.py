"""A storm of resumes costs the database one read per blog, not one per reader."""

import asyncio
import time

from websockets.asyncio.client import ClientConnection, connect

from app.config import Settings
from app.realtime.hub import HEAD_SHARED_SECONDS
from tests.support.clients import next_message, read_metrics
from tests.support.factories import SLUG, create_blog, publish_entry
from tests.support.servers import live_server

RESUMES = 200


async def test_two_hundred_readers_resuming_ahead_of_a_process_share_one_read_of_the_head(
    stack_settings: Settings,
) -> None:
    # Two processes that cannot hear each other and rarely check the log: `two` falls
    # behind, so every reader resuming on it at seq 5 is ahead of it and needs the log.
    deaf = stack_settings.model_copy(
        update={"broker_url": "memory://", "hub_check_seconds": 3600.0}
    )
    async with live_server(deaf) as one, live_server(deaf) as two:
        await create_blog(one.client)
        async with connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws") as early:
            await next_message(early)  # `two` now follows the blog, at seq 0
            for number in range(5):
                await publish_entry(one.client, body=f"<p>Ward {number} declared.</p>")
            before = await read_metrics(two.client)

            async def resume() -> ClientConnection:
                return await connect(f"{two.ws}/api/v1/blogs/{SLUG}/ws?since=5")

            started = time.monotonic()
            readers = await asyncio.gather(*(resume() for _ in range(RESUMES)))
            storm_seconds = time.monotonic() - started
            try:
                await publish_entry(two.client, body="<p>Turnout is up.</p>")
                firsts = await asyncio.gather(*(next_message(ws) for ws in readers))
            finally:
                await asyncio.gather(*(ws.close() for ws in readers))
            after = await read_metrics(two.client)

    # Each got the next event, once, and nothing it had.
    assert {message["seq"] for message in firsts} == {6}
    head_reads = after['bulletin_catch_up_queries_total{kind="head"}'] - before.get(
        'bulletin_catch_up_queries_total{kind="head"}', 0.0
    )
    # At most one read per HEAD_SHARED_SECONDS however many resume (the handshakes of 200
    # take a while on a busy machine), and far fewer than one per reader.
    most = 1 + storm_seconds / HEAD_SHARED_SECONDS
    assert 1 <= head_reads <= min(most, RESUMES / 10), (head_reads, storm_seconds)
    assert after['bulletin_catch_up_queries_total{kind="load"}'] == 1
    assert after.get('bulletin_catch_up_queries_total{kind="replay"}', 0.0) == 0


async def test_two_hundred_readers_resuming_from_before_the_memory_share_one_read_of_the_log(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server:
        # A process that keeps only the newest five events: resumes from further back read
        # the log, as after a restart that outlasted the memory of a busy blog.
        server.app.state.services.hub.tail_size = 5
        await create_blog(server.client)
        for number in range(30):
            await publish_entry(server.client, body=f"<p>Precinct {number} reports.</p>")
        head = (await server.client.get(f"/api/v1/blogs/{SLUG}")).json()["head_seq"]
        before = await read_metrics(server.client)

        async def resume() -> list[int]:
            async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=2") as ws:
                seqs = [(await next_message(ws))["seq"]]
                while seqs[-1] < head:
                    seqs.append((await next_message(ws))["seq"])
                return seqs

        received = await asyncio.gather(*(resume() for _ in range(RESUMES)))
        after = await read_metrics(server.client)

    # Every reader got every event after its seq, once, in order...
    assert all(seqs == list(range(3, head + 1)) for seqs in received)
    # ... from one read of the log for them all (it reaches every one of their seqs).
    replay = 'bulletin_catch_up_queries_total{kind="replay"}'
    assert after[replay] - before.get(replay, 0.0) == 1
