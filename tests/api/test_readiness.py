"""/readyz is not rate-limited, so it must not cost a database ping per request (security
review I2): one ping answers every request for a moment, and concurrent requests share it."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from app.api.health import READINESS_MEMORY_SECONDS
from app.config import Settings
from app.main import create_app
from tests.support.factories import ADMIN_TOKEN


class CountedPings:
    """Stands in for the database's ping: counts calls, and fails while told to."""

    def __init__(self, ping) -> None:
        self.ping = ping
        self.calls = 0
        self.failing = False

    async def __call__(self) -> None:
        self.calls += 1
        if self.failing:
            raise ConnectionRefusedError("the database is away")
        await self.ping()


@pytest.fixture
def pings(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> CountedPings:
    database = app.state.services.database
    counted = CountedPings(database.ping)
    monkeypatch.setattr(database, "ping", counted)
    return counted


async def test_a_flood_of_readiness_probes_costs_one_database_ping(
    client: httpx.AsyncClient, pings: CountedPings
) -> None:
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    answers += [await client.get("/readyz") for _ in range(50)]
    assert {answer.status_code for answer in answers} == {200}
    assert pings.calls == 1


async def test_readiness_follows_the_database_within_the_memory(
    app: FastAPI, client: httpx.AsyncClient, pings: CountedPings
) -> None:
    readiness = app.state.readiness
    assert readiness.memory_seconds == READINESS_MEMORY_SECONDS == 1.0
    readiness.memory_seconds = 0.05  # the same rule, faster
    assert (await client.get("/readyz")).status_code == 200
    pings.failing = True
    await asyncio.sleep(0.06)  # the last answer expires
    down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "database_unavailable"
    assert (await client.get("/readyz")).status_code == 503  # remembered: no second ping
    assert pings.calls == 2
    pings.failing = False
    await asyncio.sleep(0.06)
    assert (await client.get("/readyz")).status_code == 200
    assert pings.calls == 3


async def test_probes_from_one_address_are_never_refused_by_the_read_limit(
    database_url: str,
) -> None:
    app = create_app(
        Settings(database_url=database_url, admin_token=ADMIN_TOKEN, rate_limit_reads="5/minute")
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as probe:
            answers = [await probe.get("/readyz") for _ in range(20)]
            assert (await probe.get("/api/v1/blogs")).status_code == 200
    assert {answer.status_code for answer in answers} == {200}
