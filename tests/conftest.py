"""Fixtures: the app built with `create_app(settings)` on a fresh database per test.

Every API test runs on SQLite and on PostgreSQL. PostgreSQL gets one throwaway
database per test session (migrated once, emptied between tests); SQLite gets a
copy of a migrated template file per test. Stream tests run on a `stack`: a database
and a broker.
"""

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app import migrating
from app.config import Settings
from app.db import BACKGROUND
from tests.support.clients import asgi_client
from tests.support.databases import (
    STACKS,
    broker_url,
    database_on_same_server,
    execute,
    fresh_database,
    postgres_admin_url,
)
from tests.support.factories import ADMIN_TOKEN, create_blog
from tests.support.servers import running_app
from tests.support.webhook_receiver import Receiver, new_signing_secret


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _require_services() -> bool:
    return os.environ.get("BULLETIN_TEST_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "bulletin.db"
    migrating.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin_url = os.environ.get("BULLETIN_TEST_POSTGRES_URL")
    if not admin_url and not _port_open("127.0.0.1", 5432):
        if _require_services():
            pytest.fail("PostgreSQL is required (BULLETIN_TEST_REQUIRE_SERVICES=1)")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    admin_url = postgres_admin_url()
    name = f"bulletin_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = database_on_same_server(admin_url, name)
    migrating.upgrade(url)
    yield url
    asyncio.run(execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, request, tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The suite opens many connections from one address; tests/limits/ turns limits on.
    return Settings(database_url=database_url, admin_token=ADMIN_TOKEN, rate_limit_enabled=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def publish_headers(app: FastAPI) -> dict[str, str]:
    """Headers carrying a fresh token with the `publish` scope."""
    _token, secret = await app.state.services.tokens.create("desk", "publish")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def blog(client: httpx.AsyncClient) -> dict:
    """A live blog named 'vote-night', shown in New York time."""
    return await create_blog(client, timezone="America/New_York")


@pytest.fixture
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the test runs, but its background sweeps."""
    seen: list[str] = []

    def record(_connection, _cursor, statement, _parameters, context, _many) -> None:
        if context is None or BACKGROUND not in context.execution_options:
            seen.append(statement)

    engine = app.state.services.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


# --- streams: a database and a broker ---------------------------------------------------


@pytest.fixture(params=["sqlite-memory", "postgresql-redis"])
def stack(request: pytest.FixtureRequest) -> tuple[str, str]:
    return STACKS[request.param]


@pytest.fixture
def stack_settings(
    stack: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path
) -> Settings:
    """Settings for a served app on the stack's database and broker."""
    database, broker = stack
    database_url = fresh_database(database, request, tmp_path)
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        broker_url=broker_url(broker, database_url),
        hub_check_seconds=0.2,
        rate_limit_enabled=False,  # thousands of readers from one address
    )


# --- webhooks: a real receiver -----------------------------------------------------------


@pytest.fixture
def secret() -> str:
    """A Standard Webhooks signing secret."""
    return new_signing_secret()


@pytest.fixture
def receiver(secret: str) -> Iterator[Receiver]:
    """A webhook receiver that verifies every signature with `secret`."""
    running = Receiver(secret).start()
    yield running
    running.stop()
