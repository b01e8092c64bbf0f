"""Helpers for the tests of /metrics and of the dashboard built on it: promtool, a served
app with webhooks on, WebSocket readers, webhook receivers, scrapes after traffic."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from app.config import Settings
from tests.support.clients import next_message, read_metrics
from tests.support.factories import ADMIN, SECRET_KEY, create_blog, publish_entry
from tests.support.servers import live_server
from tests.support.webhook_receiver import Receiver, new_signing_secret


def promtool() -> str:
    """The promtool executable; the test fails without it where services are required."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("BULLETIN_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(
                "promtool is required (BULLETIN_TEST_REQUIRE_SERVICES=1) but not installed: "
                "run `bash .ci/promtool` (`make services` does), which installs Debian's "
                "prometheus package"
            )
        pytest.skip("promtool is not installed (bash .ci/promtool installs it)")
    return found


def with_webhooks(settings: Settings, **overrides: object) -> Settings:
    """`settings` with webhook delivery on, quick retries, and local receivers allowed."""
    values = {
        **settings.model_dump(),
        "secret_key": SECRET_KEY,
        "webhook_allow_private_targets": True,
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_cap_seconds": 0.2,
        "webhook_poll_seconds": 0.2,
        "webhook_disable_after_failures": 1000,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def readers(base: str, path: str, count: int) -> AsyncIterator[list[ClientConnection]]:
    """`count` WebSocket readers of `path`, each past its first message (hello or replay)."""
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(connect(f"{base}{path}")) for _ in range(count)]
        for ws in sockets:
            await next_message(ws)
        yield sockets


# One signing secret for every receiver of this file.
SECRET = new_signing_secret()


async def register_webhook(client: httpx.AsyncClient, slug: str, receiver: Receiver) -> int:
    response = await client.post(
        f"/api/v1/blogs/{slug}/webhooks",
        json={"url": receiver.url, "secret": SECRET},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    webhook_id: int = response.json()["id"]
    return webhook_id


def running_receiver(answer: dict[int, int] | None = None) -> Receiver:
    """A webhook receiver answering 200, or `answer[n]` to its nth request."""
    table = answer or {}
    return Receiver(SECRET, lambda n: table.get(n, 200)).start()


def admin_client(base: str) -> httpx.AsyncClient:
    """A client of a served app sending the admin token: its scrapes name blogs."""
    return httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=10)


async def metric(client: httpx.AsyncClient, sample: str) -> float:
    return (await read_metrics(client)).get(sample, float("nan"))


async def scrape_after_traffic(settings: Settings) -> str:
    """The /metrics text of a served app (webhooks on) after traffic of every kind: two
    blogs' readers, a publish they receive, a resume from the start, a webhook that fails
    once and then takes the event."""
    receiver = running_receiver({1: 503})
    try:
        async with live_server(with_webhooks(settings)) as server:
            client = server.client
            await create_blog(client, "vote-night")
            await create_blog(client, "count-night")
            await register_webhook(client, "vote-night", receiver)
            async with (
                readers(server.ws, "/api/v1/blogs/vote-night/ws", 2) as sockets,
                readers(server.ws, "/api/v1/blogs/count-night/ws", 1),
            ):
                await publish_entry(client, "vote-night", headline="Polls close")
                for ws in sockets:
                    assert (await next_message(ws))["seq"] == 1
                async with readers(server.ws, "/api/v1/blogs/vote-night/ws?since=0", 1):
                    await asyncio.to_thread(receiver.wait_for_accepted, 1)
                    exposition: str = (await client.get("/metrics", headers=ADMIN)).text
                    return exposition
    finally:
        receiver.stop()


def families(exposition: str) -> dict[str, str]:
    """Every metric family of an exposition, by name, with its type."""
    found = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(" ")
            found[name] = kind
    return found
