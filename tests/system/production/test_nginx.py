"""Bulletin behind nginx, as the README's snippet configures it: two `bulletin serve`
processes round-robin, on one PostgreSQL database and one Redis.

The nginx configuration is the README's block, with only its upstream servers and its
listen address replaced; nginx runs in the foreground with its own prefix in the test's
directory, on a free port of 127.0.0.1.
"""

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from app import migrating
from tests.support.clients import all_reach, start_readers
from tests.support.factories import ADMIN, create_blog, read_log
from tests.support.fleet import (
    Publisher,
    SseReader,
    WebSocketReader,
    misdelivered,
    sse_client,
)
from tests.support.proxies import README, Nginx, nginx_in_front, readme_block
from tests.support.servers import RedisProcess, ServerProcess, log_tail, serve_environment

DEPLOY = README.parent / "deploy" / "nginx.conf"
# As the three-node test: a process restarted on a loaded machine takes seconds to serve.
WAIT_SECONDS = 60
# Public reads per client address: small, so that a test reaches it; per hour, so that a
# window cannot end in the middle of the test.
READS = 10


class Stack:
    def __init__(self, nginx: Nginx, backends: list[ServerProcess]) -> None:
        self.nginx = nginx
        self.backends = backends


@pytest.fixture(scope="module")
def stack(
    empty_database: str, module_redis: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    migrating.upgrade(empty_database)
    directory = tmp_path_factory.mktemp("nginx-stack")
    env = serve_environment(
        empty_database,
        broker_url=module_redis.url,
        hub_check_seconds="0.5",
        rate_limit_enabled="true",
        rate_limit_storage_url=module_redis.url,
        rate_limit_storage_timeout_seconds="5",  # a loaded machine must not fail it open
        rate_limit_reads=f"{READS}/hour",
        # nginx connects from 127.0.0.1: only it is believed.
        forwarded_allow_ips="127.0.0.1",
    )
    backends = [ServerProcess(env, directory / f"backend-{n}.log") for n in (1, 2)]
    nginx = nginx_in_front(
        directory / "nginx",
        readme_block("### Behind nginx", "nginx"),
        [backend.address for backend in backends],
    )
    try:
        for backend in backends:
            backend.start()
        nginx.start()
        yield Stack(nginx, backends)
    finally:
        nginx.stop()
        for backend in backends:
            backend.stop()
            print(f"--- {backend.log_path.name} (tail) ---\n{log_tail(backend.log_path, 3000)}")
        print(f"--- nginx error.log ---\n{log_tail(nginx.log, 3000)}")


def admin_client(base: str) -> httpx.AsyncClient:
    """Newsroom requests: with a token, so never rate limited."""
    return httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=10)


def test_the_readme_snippet_is_deploy_nginx_conf() -> None:
    snippet = readme_block("### Behind nginx", "nginx")
    deployed = "".join(
        line for line in DEPLOY.read_text().splitlines(keepends=True) if not line.startswith("#")
    )
    assert deployed == snippet


async def test_a_websocket_reader_gets_events_through_nginx(stack: Stack) -> None:
    async with admin_client(stack.nginx.http) as client:
        await create_blog(client, "ws-through", "Through nginx")
        async with connect(f"{stack.nginx.ws}/api/v1/blogs/ws-through/ws", open_timeout=10) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
            assert hello == {"type": "hello", "seq": 0}
            await client.post("/api/v1/blogs/ws-through/entries", json={"body": "<p>One</p>"})
            while (event := json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS)))[
                "type"
            ] == "heartbeat":
                pass
    assert (event["seq"], event["type"]) == (1, "entry.created")


async def test_an_sse_event_arrives_through_nginx_while_the_stream_stays_open(
    stack: Stack,
) -> None:
    async with admin_client(stack.nginx.http) as client:
        await create_blog(client, "sse-through", "Through nginx")
        path = "/api/v1/blogs/sse-through/sse"
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=WAIT_SECONDS)) as direct:
            async with direct.stream("GET", stack.backends[0].http + path) as answer:
                # What makes nginx pass the stream on unbuffered, with no proxy setting.
                assert answer.headers["x-accel-buffering"] == "no"
            async with direct.stream("GET", stack.nginx.http + path) as stream:
                assert stream.status_code == 200
                assert "x-accel-buffering" not in stream.headers  # nginx took it as an order
                lines = stream.aiter_lines()
                hello = await next_data(lines)
                assert hello["type"] == "hello"
                published_at = time.monotonic()
                await client.post("/api/v1/blogs/sse-through/entries", json={"body": "<p>1</p>"})
                event = await next_data(lines)
                took = time.monotonic() - published_at
    assert (event["seq"], event["type"]) == (1, "entry.created")
    # Buffered, the event would wait in nginx until its buffer filled or the stream ended.
    assert took < 2, took


async def next_data(lines: object) -> dict:
    """The next `data:` of an SSE stream that is not a heartbeat."""
    async for line in lines:  # type: ignore[attr-defined]
        if line.startswith("data: "):
            message = json.loads(line[6:])
            if message["type"] != "heartbeat":
                return message
    raise AssertionError("the stream ended")


def from_address(address: str, base: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of 127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=10)


async def statuses(client: httpx.AsyncClient, count: int, **headers: str) -> list[int]:
    return [
        (await client.get("/api/v1/blogs/limits", headers=headers)).status_code
        for _ in range(count)
    ]


async def test_rate_limits_count_the_client_nginx_saw_and_no_address_a_client_claims(
    stack: Stack,
) -> None:
    async with admin_client(stack.nginx.http) as client:
        await create_blog(client, "limits", "Limits")
    proxy, backend = stack.nginx.http, stack.backends[0].http
    async with (
        from_address("127.0.0.5", proxy) as first,
        from_address("127.0.0.6", proxy) as second,
        from_address("127.0.0.7", backend) as claiming_directly,
        from_address("127.0.0.8", proxy) as claiming_through_nginx,
    ):
        # Round-robin: the reads of 127.0.0.5 alternate between the two processes, which
        # count them together in Redis.
        assert await statuses(first, READS) == [200] * READS
        refused = await first.get("/api/v1/blogs/limits")
        second_answers = await statuses(second, 2)
        # Straight to a process, a claimed X-Forwarded-For is not believed: 127.0.0.7 is
        # counted, not the address it names.
        direct = await statuses(claiming_directly, 2, **{"X-Forwarded-For": "127.0.0.6"})
        claimed_limited = await claiming_directly.get(
            "/api/v1/blogs/limits", headers={"X-Forwarded-For": "127.0.0.5"}
        )
        # Through nginx, the address it appends (the peer it saw) is the one counted.
        through = await claiming_through_nginx.get(
            "/api/v1/blogs/limits", headers={"X-Forwarded-For": "127.0.0.5"}
        )

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0
    assert second_answers == [200, 200]
    assert direct == [200, 200]
    assert claimed_limited.status_code == 200
    assert through.status_code == 200


async def test_readers_resume_through_nginx_on_the_other_process_when_one_restarts(
    stack: Stack,
) -> None:
    slug = "restarts"
    async with admin_client(stack.nginx.http) as client:
        await create_blog(client, slug, "Restarts")
    sse = sse_client()
    readers = [WebSocketReader(stack.nginx.http, slug) for _ in range(20)]
    readers += [SseReader(stack.nginx.http, slug, sse) for _ in range(10)]
    tasks = await start_readers(readers, timeout=WAIT_SECONDS)
    publisher = Publisher(stack.nginx.http, slug)
    publishing = asyncio.create_task(publisher.run(count=90, pause=0.02))
    try:
        # Each process is restarted in turn while publishing goes on, so every reader
        # (spread over both by round-robin) loses its process once at least.
        for index, backend in enumerate(stack.backends):
            await publisher.acked_at_least(30 * (index + 1))
            await asyncio.to_thread(backend.stop)
            await asyncio.to_thread(backend.start)
        await asyncio.wait_for(publishing, WAIT_SECONDS)
        async with admin_client(stack.nginx.http) as client:
            log = await read_log(client, slug)
        head = log[-1]["seq"]
        await all_reach(readers, head, WAIT_SECONDS)
    finally:
        for task in [publishing, *tasks]:
            task.cancel()
        await asyncio.gather(publishing, *tasks, return_exceptions=True)
        await sse.aclose()

    assert head == 90 == len(publisher.acked)
    assert [event["seq"] for event in log] == list(range(1, head + 1))
    assert all(len(reader.opened) >= 2 for reader in readers), "a reader never lost its process"
    wrong = {index: misdelivered(reader, head) for index, reader in enumerate(readers)}
    assert {index: why for index, why in wrong.items() if why} == {}
