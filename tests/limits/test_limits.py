"""Public limits per client address: reads, new streams and open streams, on both edges."""

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from app.config import Settings
from tests.support.clients import asgi_client, next_message
from tests.support.databases import REDIS_URL, fresh_database
from tests.support.factories import ADMIN, ADMIN_TOKEN, SLUG, create_blog
from tests.support.servers import EDGES, LiveServer, live_server, running_app
from tests.support.waiting import eventually

BOGUS = {"Authorization": "Bearer bltn_not-a-token-anyone-was-given"}


def limited_settings(database_url: str, **limits: object) -> Settings:
    return Settings(database_url=database_url, admin_token=ADMIN_TOKEN, **limits)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """An app allowing three public reads per address and minute."""
    async with running_app(limited_settings(database_url, rate_limit_reads="3/minute")) as app:
        async with asgi_client(app, "192.0.2.1") as desk:
            await create_blog(desk)
        yield app


async def use_up_reads(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
    for _ in range(3):
        response = await client.get(f"/api/v1/blogs/{SLUG}", headers=headers)
        assert response.status_code != 429


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "rate_limited"


# --- reads ------------------------------------------------------------------------


async def test_a_read_over_the_limit_gets_429_with_retry_after_and_a_json_error(
    app: FastAPI,
) -> None:
    async with asgi_client(app, "203.0.113.5") as reader:
        await use_up_reads(reader)
        response = await reader.get(f"/api/v1/blogs/{SLUG}/entries")
    assert_rate_limited(response)
    assert "203.0.113.5" not in response.text


async def test_other_addresses_keep_reading_while_one_is_limited(app: FastAPI) -> None:
    async with asgi_client(app, "203.0.113.5") as busy, asgi_client(app, "203.0.113.6") as other:
        await use_up_reads(busy)
        assert (await busy.get("/api/v1/blogs")).status_code == 429
        assert (await other.get("/api/v1/blogs")).status_code == 200


async def test_a_valid_token_is_never_limited_even_from_a_limited_address(app: FastAPI) -> None:
    async with asgi_client(app, "203.0.113.5") as newsroom:
        await use_up_reads(newsroom)
        for _ in range(10):
            assert (await newsroom.get(f"/api/v1/blogs/{SLUG}", headers=ADMIN)).status_code == 200
        response = await newsroom.post(
            f"/api/v1/blogs/{SLUG}/entries", json={"body": "<p>Polls close</p>"}, headers=ADMIN
        )
        assert response.status_code == 201
        assert (await newsroom.get(f"/api/v1/blogs/{SLUG}")).status_code == 429


async def test_a_bogus_token_earns_no_exemption(app: FastAPI) -> None:
    async with asgi_client(app, "203.0.113.5") as guesser:
        await use_up_reads(guesser, BOGUS)
        assert_rate_limited(await guesser.get(f"/api/v1/blogs/{SLUG}/entries", headers=BOGUS))
        assert_rate_limited(
            await guesser.post(f"/api/v1/blogs/{SLUG}/entries", json={}, headers=BOGUS)
        )


async def test_made_up_tokens_from_an_address_over_its_limit_cost_no_query(
    app: FastAPI, statements: list[str]
) -> None:
    # However long the requests take, the tokens read below are not read again.
    app.state.services.rate_limits.live_tokens.unknown_seconds = 3600
    async with asgi_client(app, "203.0.113.5") as guesser:
        await use_up_reads(guesser, BOGUS)
        statements.clear()
        for _ in range(20):
            made_up = {"Authorization": f"Bearer bltn_{secrets.token_urlsafe(32)}"}
            assert_rate_limited(await guesser.get(f"/api/v1/blogs/{SLUG}", headers=made_up))
        # A real token is let through (a read with a token of the blog itself looks the token
        # up for the caller's role: the list of blogs does not).
        assert (await guesser.get("/api/v1/blogs", headers=ADMIN)).status_code == 200
    assert [statement for statement in statements if "FROM tokens" in statement] == []


async def test_a_token_made_after_the_tokens_were_read_is_exempt_once_they_are_read_again(
    app: FastAPI,
) -> None:
    app.state.services.rate_limits.live_tokens.unknown_seconds = 0  # read again at once
    async with asgi_client(app, "203.0.113.5") as newsroom:
        await use_up_reads(newsroom, BOGUS)
        _token, secret = await app.state.services.tokens.create("late shift", "publish")
        response = await newsroom.get(
            f"/api/v1/blogs/{SLUG}", headers={"Authorization": f"Bearer {secret}"}
        )
        assert response.status_code == 200
        assert_rate_limited(await newsroom.get(f"/api/v1/blogs/{SLUG}", headers=BOGUS))


async def test_a_revoked_token_is_limited_again(app: FastAPI) -> None:
    token, secret = await app.state.services.tokens.create("freelancer", "publish")
    headers = {"Authorization": f"Bearer {secret}"}
    await app.state.services.tokens.revoke(token.id)
    async with asgi_client(app, "203.0.113.5") as former:
        await use_up_reads(former, headers)
        assert_rate_limited(await former.get(f"/api/v1/blogs/{SLUG}", headers=headers))


async def test_static_files_and_health_checks_are_never_limited(app: FastAPI) -> None:
    async with asgi_client(app, "203.0.113.5") as probe:
        await use_up_reads(probe)
        for _ in range(5):
            assert (await probe.get("/healthz")).status_code == 200
            assert (await probe.get("/readyz")).status_code == 200
            assert (await probe.get("/metrics")).status_code == 200
            assert (await probe.get("/static/does-not-exist.js")).status_code == 404


async def test_ipv6_addresses_are_counted_by_their_64_prefix(app: FastAPI) -> None:
    async with (
        asgi_client(app, "2001:db8:1:2::10") as first,
        asgi_client(app, "2001:db8:1:2:ffff::99") as same_network,
        asgi_client(app, "2001:db8:1:3::10") as next_network,
    ):
        await use_up_reads(first)
        assert (await same_network.get("/api/v1/blogs")).status_code == 429
        assert (await next_network.get("/api/v1/blogs")).status_code == 200


async def test_limits_off_let_any_number_of_reads_through(database_url: str) -> None:
    settings = limited_settings(database_url, rate_limit_enabled=False, rate_limit_reads="1/hour")
    async with running_app(settings) as app, asgi_client(app, "203.0.113.5") as reader:
        for _ in range(5):
            assert (await reader.get("/api/v1/blogs")).status_code == 200


# --- shared storage ---------------------------------------------------------------------


async def test_redis_storage_shares_the_counts_between_app_instances(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = limited_settings(
        fresh_database("sqlite", request, tmp_path),
        rate_limit_reads="3/minute",
        rate_limit_storage_url=REDIS_URL,
        rate_limit_key_prefix=f"bulletin-test-{uuid.uuid4().hex}",
        # The suite loads 2 cores: the product's 0.5 s could fail the limit open here.
        rate_limit_storage_timeout_seconds=5,
    )
    async with (
        running_app(settings) as one,
        running_app(settings) as two,
        asgi_client(one, "203.0.113.5") as via_one,
        asgi_client(two, "203.0.113.5") as via_two,
    ):
        assert (await via_one.get("/api/v1/blogs")).status_code == 200
        assert (await via_two.get("/api/v1/blogs")).status_code == 200
        assert (await via_one.get("/api/v1/blogs")).status_code == 200
        assert_rate_limited(await via_two.get("/api/v1/blogs"))
        assert_rate_limited(await via_one.get("/api/v1/blogs"))


async def test_reads_go_on_unlimited_while_the_limit_storage_is_unreachable(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = limited_settings(
        fresh_database("sqlite", request, tmp_path),
        rate_limit_reads="1/minute",
        rate_limit_storage_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
    )
    async with running_app(settings) as app, asgi_client(app, "203.0.113.5") as reader:
        for _ in range(3):
            assert (await reader.get("/api/v1/blogs")).status_code == 200


# --- streams, on both WebSocket edges ---------------------------------------------------


@pytest.fixture(params=list(EDGES))
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A served app allowing two open streams per address (SQLite; the edge is what varies)."""
    settings = limited_settings(
        fresh_database("sqlite", request, tmp_path),
        max_streams_per_ip=2,
        rate_limit_stream_connects="1000/minute",
    )
    async with live_server(settings, EDGES[request.param]) as running_server:
        await create_blog(running_server.client)
        yield running_server


def open_streams(server: LiveServer) -> dict[str, int]:
    return server.app.state.services.rate_limits.slots.open


async def slots_freed_to(server: LiveServer, expected: dict[str, int]) -> None:
    """Wait until the server counts these open streams; it frees slots between turns of
    its loop."""
    await eventually(
        lambda: open_streams(server),
        10,
        f"open streams {expected}",
        holds=lambda open_now: open_now == expected,
    )


@asynccontextmanager
async def reading(server: LiveServer, **headers: str) -> AsyncIterator[ClientConnection]:
    """A WebSocket reader of the blog, past its hello (so it is surely admitted)."""
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws", additional_headers=headers) as ws:
        assert (await next_message(ws))["type"] == "hello"
        yield ws


async def refused_websocket(server: LiveServer, **headers: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws", additional_headers=headers):
            pass
    return refused.value


def assert_handshake_rate_limited(refusal: InvalidStatus) -> None:
    response = refusal.response
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert json.loads(response.body)["error"]["code"] == "rate_limited"


@asynccontextmanager
async def sse(server: LiveServer, **headers: str) -> AsyncIterator[httpx.Response]:
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{server.http}/api/v1/blogs/{SLUG}/sse", headers=headers) as stream,
    ):
        yield stream


async def test_the_stream_past_the_cap_is_refused_on_both_edges_until_one_closes(
    server: LiveServer,
) -> None:
    async with reading(server), reading(server) as second:
        assert open_streams(server) == {"127.0.0.1": 2}
        assert_handshake_rate_limited(await refused_websocket(server))
        async with sse(server) as refused:
            assert refused.status_code == 429
            assert refused.headers["retry-after"]
            assert json.loads(await refused.aread())["error"]["code"] == "rate_limited"
        await second.close()
        await slots_freed_to(server, {"127.0.0.1": 1})
        async with reading(server):
            assert open_streams(server) == {"127.0.0.1": 2}
    await slots_freed_to(server, {})


async def test_sse_streams_count_against_the_cap_and_free_it_when_they_end(
    server: LiveServer,
) -> None:
    async with sse(server) as first, sse(server):
        assert first.status_code == 200
        assert open_streams(server) == {"127.0.0.1": 2}
        async with sse(server) as third:
            assert third.status_code == 429
        assert_handshake_rate_limited(await refused_websocket(server))
    await slots_freed_to(server, {})
    async with sse(server) as again:
        assert again.status_code == 200


async def test_other_addresses_behind_a_trusted_proxy_open_streams_while_one_is_full(
    server: LiveServer,
) -> None:
    # uvicorn believes X-Forwarded-For from localhost by default; both edges must agree.
    elsewhere = {"X-Forwarded-For": "198.51.100.7"}
    async with (
        reading(server),
        reading(server),
        reading(server, **elsewhere),
        sse(server, **elsewhere) as stream,
    ):
        assert stream.status_code == 200
        assert open_streams(server) == {"127.0.0.1": 2, "198.51.100.7": 2}
        assert_handshake_rate_limited(await refused_websocket(server, **elsewhere))


async def test_a_valid_token_opens_streams_past_the_cap_and_a_bogus_one_does_not(
    server: LiveServer,
) -> None:
    async with reading(server), reading(server):
        async with reading(server, **ADMIN), sse(server, **ADMIN) as stream:
            assert stream.status_code == 200
        assert_handshake_rate_limited(await refused_websocket(server, **BOGUS))
        async with sse(server, **BOGUS) as refused:
            assert refused.status_code == 429


async def raw_request(server: LiveServer, request: str) -> asyncio.StreamWriter:
    """Send a raw request and wait for the response head; returns the open connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request.encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    assert head.split(b" ", 2)[1] in (b"101", b"200"), head
    return writer


async def test_a_stream_whose_client_vanishes_without_closing_frees_its_slot(
    server: LiveServer,
) -> None:
    websocket = await raw_request(
        server,
        f"GET /api/v1/blogs/{SLUG}/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
    )
    event_stream = await raw_request(
        server, f"GET /api/v1/blogs/{SLUG}/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    assert open_streams(server) == {"127.0.0.1": 2}
    websocket.transport.abort()  # a reset, no close frame: a phone going into a tunnel
    event_stream.transport.abort()
    await slots_freed_to(server, {})


async def test_streams_the_server_refuses_or_ends_free_their_slots(server: LiveServer) -> None:
    async with connect(f"{server.ws}/api/v1/blogs/nowhere/ws") as ws:
        await ws.wait_closed()
    assert ws.close_code == 4504
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{server.http}/api/v1/blogs/{SLUG}/sse?since=99")
    assert response.status_code == 409
    async with reading(server) as ws:
        await ws.send("readers do not send")
        await ws.wait_closed()
    assert ws.close_code == 4501
    await slots_freed_to(server, {})


@pytest.fixture(params=list(EDGES))
async def churn_server(request: pytest.FixtureRequest, tmp_path: Path):
    """A served app allowing two new streams per address and minute."""
    settings = limited_settings(
        fresh_database("sqlite", request, tmp_path), rate_limit_stream_connects="2/minute"
    )
    async with live_server(settings, EDGES[request.param]) as running_server:
        await create_blog(running_server.client)
        yield running_server


async def test_new_streams_past_the_connection_rate_are_refused_with_retry_after(
    churn_server: LiveServer,
) -> None:
    async with reading(churn_server):
        pass
    async with sse(churn_server) as stream:
        assert stream.status_code == 200
    assert_handshake_rate_limited(await refused_websocket(churn_server))
    async with sse(churn_server) as refused:
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    # A refused attempt holds no slot.
    await slots_freed_to(churn_server, {})
