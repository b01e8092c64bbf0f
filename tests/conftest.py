"""Fixtures: the app built with `create_app(settings)` on a fresh database per test.

Every API test runs on SQLite and on PostgreSQL. PostgreSQL gets one throwaway
database per test session (migrated once, emptied between tests); SQLite gets a
copy of a migrated template file per test.
"""

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app import migrating
from app.config import Settings
from app.main import create_app

ADMIN_TOKEN = "bltn_test-admin-token-0123456789abcdef"
TABLES = ["webhook_deliveries", "webhooks", "events", "entries", "blogs", "tokens"]


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


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin_url = os.environ.get("BULLETIN_TEST_POSTGRES_URL")
    if not admin_url:
        if not _port_open("127.0.0.1", 5432):
            if _require_services():
                pytest.fail("PostgreSQL is required (BULLETIN_TEST_REQUIRE_SERVICES=1)")
            pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
        admin_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    name = f"bulletin_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    migrating.upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty_postgres(url: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


def fresh_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of this kind ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        path = tmp_path / "bulletin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_empty_postgres(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, request, tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The suite opens many connections from one address; tests/test_rate_limits.py turns it on.
    return Settings(database_url=database_url, admin_token=ADMIN_TOKEN, rate_limit_enabled=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bulletin.test") as client:
        yield client


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def publish_headers(app: FastAPI) -> dict[str, str]:
    """Headers carrying a fresh token with the `publish` scope."""
    _token, secret = await app.state.services.tokens.create("desk", "publish")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def blog(client: httpx.AsyncClient) -> dict:
    """A live blog named 'vote-night', shown in New York time."""
    response = await client.post(
        "/api/v1/blogs",
        json={"slug": "vote-night", "title": "Vote night", "timezone": "America/New_York"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def read_log(client: httpx.AsyncClient, slug: str, since: int = 0) -> list[dict]:
    """Every event of a blog's change log after `since`, following `next_since`."""
    events: list[dict] = []
    while True:
        page = (await client.get(f"/api/v1/blogs/{slug}/events?since={since}&limit=1000")).json()
        events += page["items"]
        if page["next_since"] == page["head"]:
            return events
        since = page["next_since"]
