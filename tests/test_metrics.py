"""/metrics as an operator's Prometheus scrapes it: readers per blog, lag, publishes,
delivery latency, webhooks, refusals, broker reconnects and the database pool, on a served
app with real readers, a real webhook receiver and a real Redis; and the whole exposition
passes `promtool check metrics` (Debian's prometheus package, installed by .ci/promtool)."""

import asyncio
import re
import subprocess
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from sqlalchemy import text
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.config import Settings
from app.metrics import OTHER, top_with_other
from tests.support.clients import asgi_client, next_message, read_metrics
from tests.support.factories import ADMIN, create_blog, publish_entry
from tests.support.metrics import (
    SECRET,
    admin_client,
    families,
    metric,
    promtool,
    readers,
    register_webhook,
    running_receiver,
    scrape_after_traffic,
    with_webhooks,
)
from tests.support.proxies import README
from tests.support.servers import RedisProcess, live_server, running_app
from tests.support.waiting import eventually
from tests.support.webhook_receiver import Receiver

WAIT_SECONDS = 10


# --- the exposition -------------------------------------------------------------------


async def test_the_exposition_after_traffic_of_every_kind_passes_promtool(
    stack_settings: Settings,
) -> None:
    checker = promtool()
    exposition = await scrape_after_traffic(stack_settings)
    checked = subprocess.run(
        [checker, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


@pytest.mark.parametrize("stack", ["postgresql-redis"], indirect=True)
async def test_the_readme_table_names_every_metric_exposed_and_no_other(
    stack_settings: Settings,
) -> None:
    exposed = families(await scrape_after_traffic(stack_settings))
    # The client's `_created` companions (a counter's start time) are not Bulletin's metrics.
    queried = {name for name in exposed if not name.endswith("_created")}
    section = README.read_text().split("### Metrics\n", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `(bulletin_[a-z_]+)(?:\{[a-z_]+\})?` \|", section, re.M))
    assert documented == queried


# --- what each number says ----------------------------------------------------------------


def test_labels_stay_bounded_the_most_read_by_name_and_the_rest_summed() -> None:
    counts = [(f"blog-{n}", n) for n in range(1, 31)]
    shown = top_with_other(counts, top=3)
    assert shown == [("blog-30", 30), ("blog-29", 29), ("blog-28", 28), (OTHER, sum(range(1, 28)))]
    assert top_with_other([]) == [(OTHER, 0)]


async def test_readers_are_counted_per_blog_for_an_admin_s_scrape(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server, admin_client(server.http) as admin:
        await create_blog(admin, "vote-night")
        await create_blog(admin, "count-night")
        async with (
            readers(server.ws, "/api/v1/blogs/vote-night/ws", 3),
            readers(server.ws, "/api/v1/blogs/count-night/ws", 1),
        ):
            samples = await read_metrics(admin)
            assert samples['bulletin_blog_readers{blog="vote-night"}'] == 3
            assert samples['bulletin_blog_readers{blog="count-night"}'] == 1
            assert samples[f'bulletin_blog_readers{{blog="{OTHER}"}}'] == 0
        # Gone with its readers (the stream's end is seen by the server a moment later).
        await eventually(
            lambda: metric(admin, 'bulletin_blog_readers{blog="vote-night"}'),
            WAIT_SECONDS,
            "the readers to be gone",
            holds=lambda value: value == 0,
        )


async def test_an_anonymous_scrape_sees_readers_now_summed_never_per_blog(
    stack_settings: Settings,
) -> None:
    # Readers now of a blog are for its members (DESIGN, invariant 7); /metrics is public.
    async with live_server(stack_settings) as server:
        await create_blog(server.client, "vote-night")
        async with readers(server.ws, "/api/v1/blogs/vote-night/ws", 2):
            samples = await read_metrics(server.client)
    per_blog = {name: value for name, value in samples.items() if "bulletin_blog_readers" in name}
    assert per_blog == {f'bulletin_blog_readers{{blog="{OTHER}"}}': 2}


async def test_a_publish_is_counted_by_type_and_timed_from_commit_to_its_readers(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server:
        client = server.client
        await create_blog(client, "vote-night")
        before = await read_metrics(client)
        assert before["bulletin_delivery_latency_seconds_count"] == 0
        async with readers(server.ws, "/api/v1/blogs/vote-night/ws", 2) as sockets:
            entry = await publish_entry(client, "vote-night", headline="Turnout at 64%")
            await client.patch(
                f"/api/v1/blogs/vote-night/entries/{entry['id']}",
                json={"headline": "Turnout at 66%"},
                headers=ADMIN,
            )
            for ws in sockets:
                assert [(await next_message(ws))["seq"] for _ in range(2)] == [1, 2]
            samples = await read_metrics(client)
    assert samples['bulletin_events_published_total{type="entry.created"}'] == 1
    assert samples['bulletin_events_published_total{type="entry.updated"}'] == 1
    # Once per event, not per reader.
    assert samples["bulletin_delivery_latency_seconds_count"] == 2
    assert samples["bulletin_delivery_latency_seconds_sum"] > 0


async def test_a_reader_is_counted_by_how_many_events_it_was_behind_when_it_connected(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server:
        client = server.client
        await create_blog(client, "vote-night")
        for headline in ("Polls open", "First results", "Recount asked", "Recount refused"):
            await publish_entry(client, "vote-night", headline=headline)
        async with (
            readers(server.ws, "/api/v1/blogs/vote-night/ws", 1),
            readers(server.ws, "/api/v1/blogs/vote-night/ws?since=3", 1),
            readers(server.ws, "/api/v1/blogs/vote-night/ws?since=0", 1),
        ):
            samples = await read_metrics(client)
    lag = "bulletin_reader_lag_events_bucket"
    assert samples["bulletin_reader_lag_events_count"] == 3
    assert samples[f'{lag}{{le="0.0"}}'] == 1  # at the head
    assert samples[f'{lag}{{le="1.0"}}'] == 2  # one event behind
    assert samples[f'{lag}{{le="2.0"}}'] == 2
    assert samples[f'{lag}{{le="5.0"}}'] == 3  # four behind
    assert samples["bulletin_reader_lag_events_sum"] == 5


@pytest.mark.parametrize("stack", ["sqlite-memory"], indirect=True)
async def test_readers_left_behind_the_head_are_seen_at_the_next_check_not_only_at_connect(
    stack_settings: Settings,
) -> None:
    async with live_server(stack_settings) as server:
        await create_blog(server.client, "vote-night")
        async with readers(server.ws, "/api/v1/blogs/vote-night/ws", 1) as sockets:
            lag = "bulletin_reader_lag_behind_head_events"
            await eventually(
                lambda: metric(server.client, f"{lag}_count"), WAIT_SECONDS, "a check observed"
            )
            assert await metric(server.client, f"{lag}_sum") == 0
            # Another process on the same database with a broker of its own (memory://):
            # its publish reaches this one only through the check of the heads.
            async with running_app(stack_settings) as other, asgi_client(other) as client:
                for headline in ("Polls close", "First results"):
                    await publish_entry(client, "vote-night", headline=headline)
            assert (await next_message(sockets[0]))["seq"] in (1, 2)
            assert await metric(server.client, f"{lag}_sum") >= 1
            assert await metric(server.client, f'{lag}_bucket{{le="0.0"}}') < await metric(
                server.client, f"{lag}_count"
            )


async def test_webhook_backlog_and_failures_in_a_row_are_shown_per_webhook(
    stack_settings: Settings,
) -> None:
    failing = Receiver(SECRET, lambda _n: 500).start()
    healthy = running_receiver()
    try:
        async with live_server(with_webhooks(stack_settings)) as server:
            client = server.client
            await create_blog(client, "vote-night")
            stuck = await register_webhook(client, "vote-night", failing)
            keeping_up = await register_webhook(client, "vote-night", healthy)
            await publish_entry(client, "vote-night", headline="Polls close")
            await publish_entry(client, "vote-night", headline="Exit poll")
            await asyncio.to_thread(healthy.wait_for_accepted, 2)
            await asyncio.to_thread(failing.wait_for, lambda r: len(r.arrivals) >= 2)
            samples = await eventually(
                lambda: read_metrics(client),
                WAIT_SECONDS,
                "two failures in a row",
                holds=lambda s: (
                    s[f'bulletin_webhook_consecutive_failures{{webhook="{stuck}"}}'] >= 2
                ),
            )
    finally:
        failing.stop()
        healthy.stop()
    assert samples[f'bulletin_webhook_backlog_events{{webhook="{stuck}"}}'] == 2
    assert samples[f'bulletin_webhook_backlog_events{{webhook="{keeping_up}"}}'] == 0
    assert samples[f'bulletin_webhook_consecutive_failures{{webhook="{keeping_up}"}}'] == 0
    assert samples['bulletin_webhook_attempts_total{outcome="failed"}'] >= 2
    assert samples['bulletin_webhook_attempts_total{outcome="delivered"}'] == 2


async def test_requests_refused_by_the_rate_limits_are_counted_by_kind(
    settings: Settings,
) -> None:
    limited = Settings(
        **{**settings.model_dump(), "rate_limit_enabled": True, "rate_limit_reads": "2/minute"}
    )
    async with running_app(limited) as app, asgi_client(app, host="203.0.113.7") as client:
        await create_blog(client, "vote-night")
        answers = [(await client.get("/api/v1/blogs/vote-night")).status_code for _ in range(4)]
        assert answers == [200, 200, 429, 429]
        samples = await read_metrics(client)  # /metrics itself is never limited
    assert samples['bulletin_rate_limit_refusals_total{kind="read"}'] == 2
    assert samples['bulletin_rate_limit_refusals_total{kind="stream_connect"}'] == 0
    assert samples['bulletin_rate_limit_refusals_total{kind="open_streams"}'] == 0


async def test_streams_refused_at_the_cap_or_over_the_rate_are_counted_by_kind(
    stack_settings: Settings,
) -> None:
    limited = Settings(
        **{
            **stack_settings.model_dump(),
            "rate_limit_enabled": True,
            "max_streams_per_ip": 1,
            "rate_limit_stream_connects": "2/hour",
        }
    )
    path = "/api/v1/blogs/vote-night/ws"
    async with live_server(limited) as server:
        await create_blog(server.client, "vote-night")
        async with readers(server.ws, path, 1):
            with pytest.raises(InvalidStatus) as at_cap:
                await connect(f"{server.ws}{path}")
        await eventually(
            lambda: server.app.state.services.rate_limits.slots.open,
            WAIT_SECONDS,
            "the stream's slot to be given back",
            holds=lambda open_now: open_now == {},
        )
        async with readers(server.ws, path, 1):
            pass
        with pytest.raises(InvalidStatus) as over_rate:
            await connect(f"{server.ws}{path}")
        samples = await read_metrics(server.client)
    assert at_cap.value.response.status_code == over_rate.value.response.status_code == 429
    assert samples['bulletin_rate_limit_refusals_total{kind="open_streams"}'] == 1
    assert samples['bulletin_rate_limit_refusals_total{kind="stream_connect"}'] == 1
    assert samples['bulletin_rate_limit_refusals_total{kind="read"}'] == 0


async def test_the_pool_gauges_show_connections_checked_out_of_the_pool(
    settings: Settings,
) -> None:
    async with running_app(settings) as app, asgi_client(app) as client:
        database = app.state.services.database
        async with database.read_session() as session:
            await session.execute(text("SELECT 1"))
            held = await read_metrics(client)
    assert held["bulletin_db_pool_checked_out"] >= 1
    assert held["bulletin_db_pool_size"] == (5 if database.is_sqlite else 10)


async def test_a_subscription_lost_and_made_again_counts_one_broker_reconnect(
    settings: Settings, tmp_path: Path
) -> None:
    redis_server = RedisProcess(tmp_path)
    redis_server.start()
    try:
        on_redis = Settings(**{**settings.model_dump(), "broker_url": redis_server.url})
        async with running_app(on_redis) as app, asgi_client(app) as client:
            reconnects = "bulletin_broker_reconnects_total"
            channel = app.state.services.hub.broker.channel
            async with redis.Redis.from_url(redis_server.url) as watcher:
                await eventually(
                    lambda: watcher.pubsub_numsub(channel),
                    WAIT_SECONDS,
                    "the hub to subscribe the first time",
                    holds=lambda answer: answer == [(channel.encode(), 1)],
                )
            assert await metric(client, reconnects) == 0
            redis_server.kill()
            await eventually(
                lambda: metric(client, "bulletin_broker_failures_total"),
                WAIT_SECONDS,
                "the broker's loss to be noticed",
                holds=lambda value: value >= 1,
            )
            redis_server.start()
            await eventually(
                lambda: metric(client, reconnects),
                WAIT_SECONDS,
                "the subscription to be made again",
                holds=lambda value: value == 1,
            )
    finally:
        redis_server.kill()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_scrape_answers_when_the_webhooks_numbers_are_held_up_in_the_database(
    settings: Settings,
) -> None:
    receiver = running_receiver()
    try:
        async with running_app(with_webhooks(settings)) as app, asgi_client(app) as client:
            await create_blog(client, "vote-night")
            hook = await register_webhook(client, "vote-night", receiver)
            backlog = f'bulletin_webhook_backlog_events{{webhook="{hook}"}}'
            assert await metric(client, backlog) == 0
            # Another session holds the webhooks table: the backlog query waits on its lock.
            holder = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
            try:
                async with holder.transaction():
                    await holder.execute("LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE")
                    held_up = await asyncio.wait_for(client.get("/metrics"), WAIT_SECONDS)
            finally:
                await holder.close()
    finally:
        receiver.stop()
    assert held_up.status_code == 200
    # The last numbers read stand, beside everything this process knows by itself.
    assert f"{backlog} 0.0" in held_up.text
    assert "bulletin_db_pool_size " in held_up.text
