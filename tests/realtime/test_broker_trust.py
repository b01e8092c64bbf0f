"""The broker is a doorbell, not a source of truth: what arrives through Redis or NOTIFY
reaches readers only if a process of this installation signed it, for this very blog."""

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from websockets.asyncio.client import ClientConnection, connect

from app.config import Settings
from app.db import Database
from app.installation import load_identity
from app.metrics import Metrics
from app.publishing import Publisher
from app.queries import find_blog
from app.realtime.broker import Announcement, Seal
from app.realtime.broker.memory import MemoryBroker
from app.realtime.broker.postgres import notify_channel
from app.realtime.broker.redis import redis_channel
from app.realtime.hub import Hub
from app.rendering import Renderer
from app.schemas import BlogCreate, EntryCreate
from tests.support.databases import REDIS_URL, fresh_database
from tests.support.servers import LiveServer, live_server, served_settings

SLUG = "harbour-fire"
FORGED_HTML = '<article class="entry" id="entry-999999"><img src=x onerror=alert(1)></article>'


def settings_for(database_url: str, broker_url: str) -> Settings:
    return served_settings(database_url, broker_url=broker_url, hub_check_seconds=0.2)


def forged(blog_id: int, seq: int) -> bytes:
    """An announcement in the wire format, for the right blog, signed with a made-up key."""
    payload = json.dumps(
        {"seq": seq, "type": "entry.created", "blog": SLUG, "html": FORGED_HTML}
    ).encode()
    return Seal(b"not this installation's key").encode(Announcement(SLUG, blog_id, seq, payload))


async def first_event(reader: ClientConnection) -> dict:
    """The first message that is an event (hello and heartbeats are not)."""
    while True:
        message = json.loads(await asyncio.wait_for(reader.recv(), 10))
        if message["type"] not in ("hello", "heartbeat"):
            return message


async def publish(server: LiveServer, text: str) -> None:
    await server.app.state.services.publisher.create_entry(SLUG, EntryCreate(body=f"<p>{text}</p>"))


async def refused_count(server: LiveServer) -> float:
    return server.app.state.services.metrics.broker_refused._value.get()


@pytest.fixture
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two installations' SQLite databases."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return (
        fresh_database("sqlite", request, tmp_path / "a"),
        fresh_database("sqlite", request, tmp_path / "b"),
    )


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


async def test_installations_sharing_a_redis_never_hear_each_other(
    two_databases: tuple[str, str],
) -> None:
    # Redis pub/sub ignores the database number: db 7 and db 8 share every channel.
    database_a, database_b = two_databases
    redis_base = REDIS_URL.rsplit("/", 1)[0]
    async with (
        live_server(settings_for(database_a, f"{redis_base}/7")) as a,
        live_server(settings_for(database_b, f"{redis_base}/8")) as b,
    ):
        for server in (a, b):
            await server.app.state.services.publisher.create_blog(
                BlogCreate(slug=SLUG, title="Harbour fire")
            )
        async with connect(f"{b.ws}/api/v1/blogs/{SLUG}/ws") as reader:
            assert json.loads(await reader.recv()) == {"type": "hello", "seq": 0}
            await publish(a, "Published on installation A only.")
            await publish(b, "Installation B's own first entry.")

            event = await first_event(reader)

        # A's entry never arrived, and B's own seq 1 was not taken for a repeat.
        assert event["seq"] == 1
        assert "Installation B" in event["html"]


@pytest.mark.parametrize("broker", ["redis", "postgresql"])
async def test_a_message_written_to_the_broker_by_anyone_else_is_dropped_and_counted(
    postgres_database: str, broker: str
) -> None:
    database_url = postgres_database
    broker_url = REDIS_URL if broker == "redis" else database_url
    async with live_server(settings_for(database_url, broker_url)) as server:
        services = server.app.state.services
        await services.publisher.create_blog(BlogCreate(slug=SLUG, title="Harbour fire"))
        identity = await load_identity(services.database)
        async with services.database.read_session() as session:
            blog = await find_blog(session, SLUG)
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as reader:
            assert json.loads(await reader.recv()) == {"type": "hello", "seq": 0}
            # Someone who can reach the broker, and even knows the channel, but not the key.
            if broker == "redis":
                client = redis.Redis.from_url(REDIS_URL)
                try:
                    await client.publish(redis_channel(identity), forged(blog.id, 1))
                finally:
                    await client.aclose()
            else:
                connection = await asyncpg.connect(
                    database_url.replace("postgresql+asyncpg://", "postgresql://")
                )
                try:
                    await connection.execute(
                        "SELECT pg_notify($1, $2)",
                        notify_channel(identity),
                        forged(blog.id, 1).decode(),
                    )
                finally:
                    await connection.close()
            for _ in range(500):  # until the hub has met (and dropped) it
                if await refused_count(server) == 1:
                    break
                await asyncio.sleep(0.01)
            assert await refused_count(server) == 1

            await publish(server, "The fire is under control.")
            event = await first_event(reader)

        assert event["seq"] == 1
        assert "under control" in event["html"]
        assert "onerror" not in event["html"]
        # Nor did the forgery reach the tail that later readers resume from.
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since=0") as resuming:
            replayed = await first_event(resuming)
        assert replayed["html"] == event["html"]


async def test_an_announcement_for_another_blog_of_the_same_slug_is_ignored(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        hub = Hub(database, MemoryBroker(), Metrics())  # not started: only the test announces
        committed: list[Announcement] = []
        publisher = Publisher(database, Renderer(), listeners=[committed.extend])
        await publisher.create_blog(BlogCreate(slug=SLUG, title="Harbour fire"))
        await hub.follow(SLUG)
        await publisher.create_entry(SLUG, EntryCreate(body="<p>One.</p>"))
        [real] = committed
        before = hub.position(SLUG)

        hub.receive(Announcement(SLUG, real.blog_id + 1, real.seq, real.payload))
        assert hub.position(SLUG) == before

        hub.receive(real)
        after = hub.position(SLUG)
        assert after is not None and after.seq == real.seq
    finally:
        await database.dispose()
