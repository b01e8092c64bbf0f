"""Request ids behind nginx, as the README's snippet configures it: nginx gives every
request its `$request_id`, Bulletin takes it, echoes it in `X-Request-ID` and logs the
request under it, so one id finds a request in nginx's log and in Bulletin's."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import migrating
from tests.support.factories import ADMIN, create_blog
from tests.support.proxies import Nginx, nginx_in_front, readme_block
from tests.support.servers import ServerProcess, log_tail, serve_environment
from tests.support.waiting import eventually_blocking

NGINX_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


class Proxied:
    def __init__(self, nginx: Nginx, backend: ServerProcess) -> None:
        self.nginx = nginx
        self.backend = backend


@pytest.fixture(scope="module")
def proxied(empty_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    migrating.upgrade(empty_database)
    directory = tmp_path_factory.mktemp("nginx-request-ids")
    env = serve_environment(empty_database, log_format="json", forwarded_allow_ips="127.0.0.1")
    backend = ServerProcess(env, directory / "backend.log")
    nginx = nginx_in_front(
        directory / "nginx", readme_block("### Behind nginx", "nginx"), [backend.address]
    )
    try:
        backend.start()
        nginx.start()
        yield Proxied(nginx, backend)
    finally:
        nginx.stop()
        backend.stop()
        print(f"--- {backend.log_path.name} (tail) ---\n{log_tail(backend.log_path, 3000)}")


def access_lines(path: Path, request_id: str) -> list[dict]:
    return [
        line
        for line in (json.loads(text) for text in path.read_text().splitlines() if text[:1] == "{")
        if line["logger"] == "uvicorn.access" and line["request_id"] == request_id
    ]


async def test_each_request_through_nginx_carries_nginx_s_request_id(proxied: Proxied) -> None:
    async with httpx.AsyncClient(base_url=proxied.nginx.http, timeout=10) as client:
        await create_blog(client, "harbour-fire")
        # A caller's own id does not pass the proxy: nginx's replaces it.
        answers = [
            await client.get("/api/v1/blogs/harbour-fire", headers={"X-Request-ID": "mine"}),
            await client.post(
                "/api/v1/blogs/harbour-fire/entries",
                json={"headline": "Crews arrive"},
                headers=ADMIN,
            ),
        ]
    ids = [answer.headers["X-Request-ID"] for answer in answers]
    assert all(NGINX_REQUEST_ID.fullmatch(rid) for rid in ids), ids
    assert ids[0] != ids[1]
    for rid, request_line in zip(
        ids,
        ("GET /api/v1/blogs/harbour-fire HTTP/1.1", "POST /api/v1/blogs/harbour-fire/entries"),
        strict=True,
    ):
        (line,) = eventually_blocking(
            lambda rid=rid: access_lines(proxied.backend.log_path, rid),
            10,
            f"Bulletin's access line for {rid}",
        )
        assert request_line in line["message"]
