"""Webhook delivery on real `bulletin serve` processes: once each, in order, signed,
across a graceful restart and from two processes on one database.

The receiver is a real HTTP server that verifies every signature with the
`standardwebhooks` library; every wait is on something it observed, and bounded.
"""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.factories import ADMIN, SECRET_KEY, Newsroom
from tests.support.servers import ServerProcess, closed, serve_environment
from tests.support.waiting import eventually_blocking
from tests.support.webhook_receiver import Receiver

SLUG = "count-night"
WAIT_SECONDS = 30


def server_environment(database_url: str) -> dict[str, str]:
    return serve_environment(
        database_url,
        secret_key=SECRET_KEY,
        webhook_allow_private_targets="true",
        webhook_retry_base_seconds="0.05",
        webhook_retry_cap_seconds="0.5",
        webhook_poll_seconds="0.2",
        webhook_read_timeout_seconds="5",
        log_level="debug",
    )


@pytest.fixture
def server(database_url: str, serve: Callable[..., ServerProcess]) -> ServerProcess:
    return serve(server_environment(database_url))


def publish(base: str, count: int, first: int) -> None:
    """Publish entries numbered `first` on, one body each: <p>number</p>."""
    with httpx.Client(base_url=base, timeout=10) as client:
        newsroom = Newsroom(client, SLUG)
        for number in range(first, first + count):
            newsroom.publish(body=f"<p>{number}</p>")


def test_a_receiver_gets_every_event_once_in_order_signed_across_a_graceful_restart(
    server: ServerProcess, receiver: Receiver, secret: str, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.http, headers=ADMIN, timeout=10) as client:
        Newsroom(client, SLUG).create_blog("Count")
        created = client.post(
            f"/api/v1/blogs/{SLUG}/webhooks", json={"url": receiver.url, "secret": secret}
        )
        assert created.status_code == 201, created.text
    # The server stops while the receiver is still answering seq 4.
    receiver.hold_seq = 4
    publish(server.http, 6, first=1)
    assert receiver.holding.wait(WAIT_SECONDS)

    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGTERM)
    healthz = f"{server.http}/healthz"
    eventually_blocking(lambda: closed(healthz), WAIT_SECONDS, "the server to close its socket")
    receiver.released.set()
    server.process.wait(timeout=WAIT_SECONDS)
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "server.log").read_text()

    # The attempt in flight was let finish: seq 4 arrived once, before the restart.
    before = [arrival.seq for arrival in receiver.accepted()]
    assert before == list(range(1, len(before) + 1)) and len(before) >= 4
    server.start()
    publish(server.http, 4, first=7)
    arrivals = receiver.wait_for_accepted(10)

    assert [arrival.seq for arrival in receiver.arrivals] == list(range(1, 11))
    assert len({arrival.message_id for arrival in arrivals}) == 10
    assert all(arrival.signature_valid for arrival in arrivals)
    assert [arrival.event["entry"]["body"] for arrival in arrivals] == [
        f"<p>{number}</p>" for number in range(1, 11)
    ]
    with httpx.Client(base_url=server.http, headers=ADMIN, timeout=10) as client:
        log = client.get(f"/api/v1/blogs/{SLUG}/events", params={"since": 0}).json()["items"]
    assert [arrival.event for arrival in arrivals] == log
    assert secret not in (tmp_path / "server.log").read_text()


def test_two_server_processes_on_one_database_deliver_each_event_once_in_order(
    database_url: str, receiver: Receiver, secret: str, serve: Callable[..., ServerProcess]
) -> None:
    first = serve(server_environment(database_url), "first")
    second = serve(server_environment(database_url), "second")
    with httpx.Client(base_url=first.http, headers=ADMIN, timeout=10) as client:
        Newsroom(client, SLUG).create_blog("Count")
        hook = {"url": receiver.url, "secret": secret}
        assert client.post(f"/api/v1/blogs/{SLUG}/webhooks", json=hook).status_code == 201
    for number in range(1, 21):
        publish((first if number % 2 else second).http, 1, first=number)

    receiver.wait_for_accepted(20)

    assert [arrival.seq for arrival in receiver.arrivals] == list(range(1, 21))
    assert all(arrival.signature_valid for arrival in receiver.arrivals)
