"""A real uvicorn server on a free port, for tests that need sockets: WebSocket and SSE."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
import uvicorn

from app.config import Settings
from app.main import create_app
from app.serving import STREAM_EDGE, uvicorn_options
from tests.conftest import ADMIN_TOKEN, fresh_database

REDIS_URL = os.environ.get("BULLETIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class LiveServer:
    http: str
    ws: str
    port: int
    app: object
    client: httpx.AsyncClient


# Bulletin's own edge (what `bulletin serve` runs) and uvicorn's stock ASGI WebSocket path.
EDGES = {"edge": STREAM_EDGE, "asgi": "websockets-sansio"}


@asynccontextmanager
async def live_server(
    settings: Settings, ws: str = EDGES["edge"], ping_seconds: float | None = None
) -> AsyncIterator[LiveServer]:
    """Serve `create_app(settings)` with uvicorn on a free port, with the options of
    `bulletin serve` (app/serving.py) but for the WebSocket implementation, the log level
    and, where a test asks, the ping interval."""
    app = create_app(settings)
    options = {**uvicorn_options(settings), "ws": ws, "log_level": "warning"}
    if ping_seconds is not None:
        options |= {"ws_ping_interval": ping_seconds, "ws_ping_timeout": ping_seconds}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **options)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=f"http://{base}") as client:
        try:
            yield LiveServer(
                http=f"http://{base}", ws=f"ws://{base}", port=port, app=app, client=client
            )
        finally:
            server.should_exit = True
            await task


async def redis_ping(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()


# Database and broker pairs. Most tests run the first two, which cover both databases and
# the two main brokers; cross-process tests add PostgreSQL's LISTEN/NOTIFY.
STACKS = {
    "sqlite-memory": ("sqlite", "memory"),
    "postgresql-redis": ("postgresql", "redis"),
    "postgresql-notify": ("postgresql", "postgresql"),
}


@pytest.fixture(params=["sqlite-memory", "postgresql-redis"])
def stack(request: pytest.FixtureRequest) -> tuple[str, str]:
    return STACKS[request.param]


@pytest.fixture
def database_url(stack: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(stack[0], request, tmp_path)


@pytest.fixture
def broker_url(stack: tuple[str, str], database_url: str) -> str:
    if stack[1] == "redis":
        asyncio.run(redis_ping(REDIS_URL))  # fails loudly when Redis is down: never a silent skip
        return REDIS_URL
    if stack[1] == "postgresql":
        return database_url
    return "memory://"


@pytest.fixture
def settings(database_url: str, broker_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        broker_url=broker_url,
        hub_check_seconds=0.2,
        rate_limit_enabled=False,  # thousands of readers from one address
    )


@pytest.fixture(params=list(EDGES))
async def server(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[LiveServer]:
    async with live_server(settings, EDGES[request.param]) as running:
        yield running
