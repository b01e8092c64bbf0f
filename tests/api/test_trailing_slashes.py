"""A URL with a trailing slash is not redirected: no answer is built from the request's Host."""

import asyncio

import httpx
import pytest

from app.config import Settings
from tests.support.factories import ADMIN
from tests.support.servers import live_server

SPOOFED = {"Host": "evil.example"}


@pytest.mark.parametrize("path", ["/api/v1/blogs/", "/api/v1/blogs/vote-night/", "/healthz/"])
async def test_a_trailing_slash_url_is_not_found_and_names_the_path_without_it(
    client: httpx.AsyncClient, blog: dict, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "location" not in response.headers
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert path.rstrip("/") in error["message"]


async def test_a_spoofed_host_is_never_reflected_in_a_location(
    client: httpx.AsyncClient, blog: dict
) -> None:
    for method, path in [
        ("GET", "/api/v1/blogs/"),
        ("GET", "/api/v1/blogs/vote-night/entries/"),
        ("POST", "/api/v1/blogs/"),
        ("GET", "/blogs/vote-night/"),
    ]:
        response = await client.request(method, path, headers={**SPOOFED, **ADMIN}, json={})
        assert response.status_code == 404, (method, path)
        assert "location" not in response.headers
        assert "evil.example" not in response.text


async def test_the_paths_without_the_slash_still_answer(
    client: httpx.AsyncClient, blog: dict
) -> None:
    assert (await client.get("/api/v1/blogs", headers=SPOOFED)).status_code == 200
    assert (await client.get("/blogs/vote-night", headers=SPOOFED)).status_code == 200


async def test_a_spoofed_host_over_a_real_socket_gets_no_redirect(settings: Settings) -> None:
    # As the review reproduced it: `curl -H 'Host: evil.example' http://.../api/v1/blogs/`.
    async with live_server(settings) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /api/v1/blogs/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ")
    assert b"location:" not in head.lower()
    assert b"evil.example" not in answer
    assert b"/api/v1/blogs?" in body
