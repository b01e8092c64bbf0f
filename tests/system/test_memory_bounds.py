"""Anonymous readers cannot make a server hold memory: the memory of answers is keyed on
what a route reads and bounded in bytes, and a followed blog's tail in memory is bounded in
bytes. Measured on a real `bulletin serve` process, with the attack from the security review."""

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.factories import ADMIN
from tests.support.servers import ServerProcess, serve_environment

SLUG = "big-night"
ENTRIES = 20
BODY = "<p>" + "Results from every ward, " * 3800 + "</p>"  # ~95 KB, inside the limits


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, serve: Callable[..., ServerProcess]
) -> ServerProcess:
    database_url = fresh_database("sqlite", request, tmp_path)
    return serve(serve_environment(database_url, max_body_bytes=str(256 * 1024)))


def test_made_up_query_strings_and_large_entries_do_not_pin_memory(server: ServerProcess) -> None:
    assert server.process is not None
    with httpx.Client(base_url=server.http, timeout=60) as client:
        assert (
            client.post(
                "/api/v1/blogs", json={"slug": SLUG, "title": "Big night"}, headers=ADMIN
            ).status_code
            == 201
        )
        for number in range(ENTRIES):
            response = client.post(
                f"/api/v1/blogs/{SLUG}/entries",
                json={"headline": f"Ward {number}", "body": BODY},
                headers=ADMIN,
            )
            assert response.status_code == 201, response.text
        feed = f"/blogs/{SLUG}/feed.atom"
        first = client.get(feed)  # the one answer every poller shares
        assert len(first.content) > 1_000_000
        client.get(f"/api/v1/blogs/{SLUG}")  # the process follows the blog: its tail loads
        before = rss_bytes(server.process.pid)

        answers = [
            client.get(f"{feed}?x={number}", headers={"If-None-Match": first.headers["etag"]})
            for number in range(150)
            for _ in range(2)
        ]
        after = rss_bytes(server.process.pid)

    # Parameters the feed does not take name the same answer: the pollers' copy is current.
    assert {answer.status_code for answer in answers} == {304}
    assert {answer.headers["etag"] for answer in answers} == {first.headers["etag"]}
    # Before, each of those URLs kept its own 2 MB body: +280 MB here.
    assert after - before < 60 * 1024 * 1024
