"""A bad day for the database: streams stay alive, clients are told to retry, the log stays
readable, and a lost LISTEN connection is noticed at once. Real PostgreSQL, made to refuse
connections for a while, as an outage does."""

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from websockets.asyncio.client import connect

from app.schemas import BlogCreate
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN_TOKEN
from tests.support.servers import LiveServer, live_server, served_settings

SLUG = "levee-watch"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def database_outage(database_url: str) -> AsyncIterator[None]:
    """The database refuses every connection, and the ones open are cut, until the end."""
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(_dsn(database_url.rsplit("/", 1)[0] + "/postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        await admin.close()


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


@pytest.fixture
async def server(postgres_database: str) -> AsyncIterator[LiveServer]:
    settings = served_settings(postgres_database, heartbeat_seconds=0.2, hub_check_seconds=0.1)
    async with live_server(settings) as running:
        await running.app.state.services.publisher.create_blog(
            BlogCreate(slug=SLUG, title="Levee watch")
        )
        yield running


async def test_heartbeats_keep_coming_while_the_database_is_unreachable(
    server: LiveServer, postgres_database: str
) -> None:
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as reader:
        assert json.loads(await reader.recv())["type"] == "hello"
        async with database_outage(postgres_database):
            # Well past the checks that fail meanwhile; a browser would give up on silence.
            beats = [json.loads(await asyncio.wait_for(reader.recv(), 5)) for _ in range(10)]
    assert {beat["type"] for beat in beats} == {"heartbeat"}


@pytest.fixture
def bulletin_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="bulletin")
    yield caplog


async def test_an_outage_answers_503_with_retry_after_on_a_connection_that_stays_usable(
    server: LiveServer, postgres_database: str, bulletin_log: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    requests = [
        (b"POST", f"/api/v1/blogs/{SLUG}/entries", b'{"body": "<p>Water at 4.1 m.</p>"}'),
        (b"GET", f"/api/v1/blogs/{SLUG}/entries?limit=3", b""),
        (b"POST", f"/api/v1/blogs/{SLUG}/entries", b'{"body": "<p>Water at 4.2 m.</p>"}'),
    ]
    answers = []
    try:
        async with database_outage(postgres_database):
            bulletin_log.clear()
            for method, path, body in requests:  # one after another, on one connection
                writer.write(
                    b"%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (method, path.encode(), ADMIN_TOKEN.encode(), len(body), body)
                )
                head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
                length = int(re.search(r"content-length: (\d+)", head, re.I).group(1))
                answers.append((head, json.loads(await reader.readexactly(length))))
    finally:
        writer.close()

    for head, body in answers:
        assert head.startswith("HTTP/1.1 503")
        assert re.search(r"^retry-after: 5\r$", head, re.I | re.M)
        assert body["error"]["code"] == "database_unavailable"
    # One line, not a traceback per request.
    outage_lines = [r for r in bulletin_log.records if "database unavailable" in r.getMessage()]
    assert len(outage_lines) == 1
    assert not [r for r in bulletin_log.records if r.exc_info and r.name == "bulletin"]
    # And once the database is back, the same kind of request succeeds.
    response = await server.client.post(
        f"/api/v1/blogs/{SLUG}/entries", json={"body": "<p>Water falling.</p>"}, headers=ADMIN
    )
    assert response.status_code == 201


async def test_the_listen_broker_resubscribes_as_soon_as_its_connection_is_cut(
    postgres_database: str,
) -> None:
    settings = served_settings(postgres_database, broker_url=postgres_database)
    name = postgres_database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(_dsn(postgres_database))

    channel = ""  # the change log's; the newsroom's and the readers' channels have their own

    async def listeners() -> list[int]:
        rows = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query = $2",
            name,
            f'LISTEN "{channel}"',
        )
        return [row["pid"] for row in rows]

    async def listening() -> bool:
        return bool(await listeners())

    async def eventually(
        condition: Callable[[], Awaitable[bool]], what: str, timeout: float
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not await condition():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pytest.fail(f"waited {timeout} s for {what}")

    try:
        async with live_server(settings) as server:
            failures = server.app.state.services.metrics.broker_failures
            channel = server.app.state.services.hub.broker.channel
            await eventually(listening, "the hub to LISTEN", 10)
            [first] = await listeners()
            await admin.execute("SELECT pg_terminate_backend($1)", first)

            # Far sooner than the 15 s the idle check would take to find out.
            async def resubscribed() -> bool:
                pids = await listeners()
                return failures._value.get() == 1 and bool(pids) and first not in pids

            await eventually(resubscribed, "the hub to LISTEN again", 5)
    finally:
        await admin.close()
