"""A publish's request id, followed through two `bulletin serve` processes on Redis with
BULLETIN_LOG_FORMAT=json: the publishing process logs the commit under it, and the other
process's delivery line to its own reader carries it (the broker message took it there).
No line of either process carries the token the publish was made with."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.clients import next_message
from tests.support.databases import REDIS_URL, fresh_database
from tests.support.factories import ADMIN, ADMIN_TOKEN, create_blog
from tests.support.servers import ServerProcess, serve_environment
from tests.support.waiting import eventually

SLUG = "harbour-fire"
REQUEST_ID = "desk-7f3a9c"
WAIT_SECONDS = 10


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


def json_lines(path: Path) -> list[dict]:
    """The JSON lines of a process's log (its start-up banner is plain text)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def lines_about(path: Path, request_id: str, message: str) -> list[dict]:
    return [
        line
        for line in json_lines(path)
        if line.get("request_id") == request_id and line["message"].startswith(message)
    ]


async def test_a_publish_request_id_reaches_the_delivery_line_of_another_process(
    postgres_database: str, serve: Callable[..., ServerProcess]
) -> None:
    env = serve_environment(postgres_database, broker_url=REDIS_URL, log_format="json")
    publisher, deliverer = serve(env, name="publisher"), serve(env, name="deliverer")
    async with httpx.AsyncClient(base_url=publisher.http, timeout=10) as client:
        await create_blog(client, SLUG)
        async with connect(f"{deliverer.ws}/api/v1/blogs/{SLUG}/ws") as reader:
            assert (await next_message(reader))["type"] == "hello"
            published = await client.post(
                f"/api/v1/blogs/{SLUG}/entries",
                json={"headline": "Fire crews reach the harbour"},
                headers={**ADMIN, "X-Request-ID": REQUEST_ID},
            )
            assert published.status_code == 201, published.text
            assert published.headers["X-Request-ID"] == REQUEST_ID
            # The reader on the other process has it: that process wrote it to the socket.
            assert (await next_message(reader))["seq"] == 1

    delivered = await eventually(
        lambda: lines_about(deliverer.log_path, REQUEST_ID, "delivered"),
        WAIT_SECONDS,
        f"the deliverer's line for request {REQUEST_ID}",
    )
    (line,) = delivered
    assert (line["level"], line["logger"]) == ("INFO", "bulletin.hub")
    assert (line["blog"], line["seq"], line["event_type"]) == (SLUG, 1, "entry.created")
    assert line["readers"] == 1
    assert line["latency_seconds"] >= 0
    (committed,) = lines_about(publisher.log_path, REQUEST_ID, "committed")
    assert (committed["blog"], committed["seq"]) == (SLUG, 1)
    (access,) = [
        line
        for line in json_lines(publisher.log_path)
        if line["logger"] == "uvicorn.access" and line["request_id"] == REQUEST_ID
    ]
    assert f'"POST /api/v1/blogs/{SLUG}/entries HTTP/1.1" 201' in access["message"]
    # Every line of both is JSON, uvicorn's own included, and none holds the token.
    for process in (publisher, deliverer):
        text = await asyncio.to_thread(process.log_path.read_text)
        assert ADMIN_TOKEN not in text
        lines = json_lines(process.log_path)
        assert any(line["logger"] == "uvicorn.error" for line in lines)
        assert not any("color_message" in line for line in lines)
