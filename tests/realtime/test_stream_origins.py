"""BULLETIN_STREAM_ORIGINS: which pages may open streams (security review I1).

Off by default. When set, a browser stream (WebSocket or SSE) from a page on any other
origin is refused with 403 before it is counted, so no site can spend its visitors'
per-address stream budget; this server's own pages and clients that send no Origin (not
browsers) are never refused. Over real sockets, on both WebSocket edges.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pydantic
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.config import Settings
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN, ADMIN_TOKEN
from tests.support.servers import EDGES, LiveServer, live_server

SLUG = "vote-night"
PARTNER = "https://partner.example"
ELSEWHERE = "https://elsewhere.example"
OWN = "http://bulletin.example:8080"  # BULLETIN_PUBLIC_BASE_URL's origin
CONNECTS_PER_MINUTE = 3


def origin_settings(database_url: str, **changes: object) -> Settings:
    fields: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "public_base_url": f"{OWN}/",
        "stream_origins": [PARTNER],
        # Limits on, and tight: a refused origin must not spend the address's budget.
        "rate_limit_stream_connects": f"{CONNECTS_PER_MINUTE}/minute",
        **changes,
    }
    return Settings(**fields)  # type: ignore[arg-type]


@asynccontextmanager
async def serve(settings: Settings, edge: str) -> AsyncIterator[LiveServer]:
    async with live_server(settings, EDGES[edge]) as running:
        response = await running.client.post(
            "/api/v1/blogs", json={"slug": SLUG, "title": "Vote night"}, headers=ADMIN
        )
        assert response.status_code == 201, response.text
        yield running


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)  # the edge is what varies


@pytest.fixture(params=list(EDGES))
async def server(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveServer]:
    async with serve(origin_settings(database_url), request.param) as running:
        yield running


async def hello_over_websocket(server: LiveServer, origin: str | None) -> dict:
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws", origin=origin) as ws:  # type: ignore[arg-type]
        return json.loads(await ws.recv())


async def refused_websocket(server: LiveServer, origin: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        await hello_over_websocket(server, origin)
    return refused.value


async def sse_status(server: LiveServer, origin: str | None) -> tuple[int, str]:
    headers = {"Origin": origin} if origin else {}
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{server.http}/api/v1/blogs/{SLUG}/sse", headers=headers) as stream,
    ):
        if stream.status_code != 200:
            return stream.status_code, (await stream.aread()).decode()
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                return 200, line
    raise AssertionError("the stream ended before its hello")


def assert_origin_refused(status: int, body: str | bytes) -> None:
    assert status == 403
    assert json.loads(body)["error"]["code"] == "origin_not_allowed"


async def test_a_page_on_another_origin_is_refused_a_websocket_at_the_handshake(
    server: LiveServer,
) -> None:
    refusal = await refused_websocket(server, ELSEWHERE)
    assert_origin_refused(refusal.response.status_code, refusal.response.body)
    assert refusal.response.headers["Content-Type"] == "application/json"


async def test_listed_pages_this_servers_own_and_clients_without_origin_stream(
    server: LiveServer,
) -> None:
    for origin in (PARTNER, OWN, None):
        assert (await hello_over_websocket(server, origin))["type"] == "hello"


async def test_sse_from_another_origin_is_refused_and_from_a_listed_one_streams(
    server: LiveServer,
) -> None:
    status, body = await sse_status(server, ELSEWHERE)
    assert_origin_refused(status, body)
    for origin in (PARTNER, OWN, None):
        status, line = await sse_status(server, origin)
        assert status == 200 and '"hello"' in line


async def test_refused_origins_spend_none_of_the_addresss_stream_budget(
    server: LiveServer,
) -> None:
    for _ in range(CONNECTS_PER_MINUTE * 3):
        refusal = await refused_websocket(server, ELSEWHERE)
        assert refusal.response.status_code == 403
        status, _body = await sse_status(server, ELSEWHERE)
        assert status == 403
    # The address has its whole allowance left for the pages that are allowed.
    for _ in range(CONNECTS_PER_MINUTE):
        assert (await hello_over_websocket(server, PARTNER))["type"] == "hello"
    refusal = await refused_websocket(server, PARTNER)
    assert refusal.response.status_code == 429


@pytest.mark.parametrize("edge", list(EDGES))
async def test_without_the_setting_any_origin_streams(edge: str, database_url: str) -> None:
    settings = origin_settings(database_url, stream_origins=[])
    async with serve(settings, edge) as running:
        assert (await hello_over_websocket(running, ELSEWHERE))["type"] == "hello"
        status, _line = await sse_status(running, ELSEWHERE)
        assert status == 200


def test_listed_origins_are_normalised_and_anything_else_is_refused_at_start() -> None:
    settings = Settings(
        stream_origins=["HTTPS://Partner.Example:443/", "http://localhost:8000", "null"]
    )
    assert settings.stream_origins == ["https://partner.example", "http://localhost:8000", "null"]
    assert Settings().stream_origins == []
    for wrong in ("*", "partner.example", "https://partner.example/live", "ftp://partner.example"):
        with pytest.raises(pydantic.ValidationError, match="BULLETIN_STREAM_ORIGINS"):
            Settings(stream_origins=[wrong])
