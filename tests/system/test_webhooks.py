"""Webhook delivery on real `bulletin serve` processes, and the pieces it is built from:
target checks, signing, encrypted secrets, back-off and the secret-key setting.

The receiver is a real HTTP server that verifies every signature with the
`standardwebhooks` library; every wait is on something it observed, and bounded.
"""

import ipaddress
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook as StandardWebhook

from app.config import Settings
from app.webhooks.delivery import retry_delay
from app.webhooks.signing import (
    SecretBox,
    SecretUnreadable,
    check_signing_secret,
    signature_headers,
)
from app.webhooks.targets import TargetRefused, refusal_reason, resolve_target
from tests.support.factories import ADMIN, ADMIN_TOKEN, SECRET_KEY, Newsroom
from tests.support.servers import ServerProcess, closed
from tests.support.waiting import eventually_blocking
from tests.support.webhook_receiver import Receiver, new_signing_secret

SLUG = "count-night"
WAIT_SECONDS = 30


# --- a real server, stopped and started again ---------------------------------------


def server_environment(database_url: str) -> dict[str, str]:
    return {
        "BULLETIN_DATABASE_URL": database_url,
        "BULLETIN_ADMIN_TOKEN": ADMIN_TOKEN,
        "BULLETIN_SECRET_KEY": SECRET_KEY,
        "BULLETIN_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "BULLETIN_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
        "BULLETIN_WEBHOOK_RETRY_CAP_SECONDS": "0.5",
        "BULLETIN_WEBHOOK_POLL_SECONDS": "0.2",
        "BULLETIN_WEBHOOK_READ_TIMEOUT_SECONDS": "5",
        "BULLETIN_LOG_LEVEL": "debug",
        # The test client's many requests come from one address.
        "BULLETIN_RATE_LIMIT_ENABLED": "false",
    }


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(server_environment(database_url), tmp_path / "server.log") as process:
        yield process


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
    database_url: str, receiver: Receiver, secret: str, tmp_path: Path
) -> None:
    first = ServerProcess(server_environment(database_url), tmp_path / "first.log")
    second = ServerProcess(server_environment(database_url), tmp_path / "second.log")
    first.start()
    try:
        second.start()
        with httpx.Client(base_url=first.http, headers=ADMIN, timeout=10) as client:
            Newsroom(client, SLUG).create_blog("Count")
            hook = {"url": receiver.url, "secret": secret}
            assert client.post(f"/api/v1/blogs/{SLUG}/webhooks", json=hook).status_code == 201
        for number in range(1, 21):
            publish((first if number % 2 else second).http, 1, first=number)

        receiver.wait_for_accepted(20)
    finally:
        second.stop()
        first.stop()

    assert [arrival.seq for arrival in receiver.arrivals] == list(range(1, 21))
    assert all(arrival.signature_valid for arrival in receiver.arrivals)


# --- where webhooks may go ------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "feff::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "2002:a00:1::",
        "64:ff9b::7f00:1",
        "2001:db8::1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


async def test_a_name_is_checked_after_it_is_resolved() -> None:
    with pytest.raises(TargetRefused, match="loopback"):
        await resolve_target("http://localhost:8080/hook", allow_private=False)


async def test_a_public_address_is_connected_to_as_given() -> None:
    target = await resolve_target("https://8.8.8.8/hook", allow_private=False)
    assert target.connect_url == "https://8.8.8.8/hook"
    assert target.host_header is None and target.sni_hostname is None


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/hook", "https://user:pw@8.8.8.8/hook", "https:///hook", "8.8.8.8"]
)
async def test_only_http_urls_with_a_host_and_no_credentials_are_accepted(url: str) -> None:
    with pytest.raises(TargetRefused):
        await resolve_target(url, allow_private=True)


async def test_the_private_target_setting_lets_loopback_through() -> None:
    target = await resolve_target("http://127.0.0.1:9/hook", allow_private=True)
    assert target.connect_url == "http://127.0.0.1:9/hook"


# --- signing and secrets ---------------------------------------------------------------


def test_a_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_signing_secret()
    payload = '{"seq":7,"type":"entry.created","blog":"count-night","html":"<p>é</p>"}'.encode()
    headers = signature_headers(secret, "msg_bulletin_1_7", datetime.now(UTC), payload)

    assert StandardWebhook(secret).verify(payload, headers)["seq"] == 7
    with pytest.raises(Exception, match="signature"):
        StandardWebhook(new_signing_secret()).verify(payload, headers)


@pytest.mark.parametrize(
    "secret",
    ["whsec_", "whsec_QUJD", "not-a-standard-secret-at-all-0123456789", "whsec_####"],
)
def test_only_standard_webhooks_secrets_of_enough_bytes_are_accepted(secret: str) -> None:
    with pytest.raises(ValueError, match="Standard Webhooks"):
        check_signing_secret(secret)


def test_unpadded_standard_webhooks_secrets_are_accepted() -> None:
    secret = new_signing_secret().rstrip("=")
    assert check_signing_secret(secret) == secret


def test_secrets_are_sealed_and_only_the_same_key_opens_them() -> None:
    secret = new_signing_secret()
    sealed = SecretBox(SECRET_KEY).seal(secret)

    assert secret.encode() not in sealed
    assert SecretBox(SECRET_KEY).open(sealed) == secret
    with pytest.raises(SecretUnreadable):
        SecretBox(SECRET_KEY + "-changed").open(sealed)


@pytest.mark.parametrize(
    "key",
    ["changeme", "secret", "too-short-0123456789", "a" * 40, "abababababababababababababababab"],
)
def test_weak_or_placeholder_secret_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="BULLETIN_SECRET_KEY"):
        Settings(secret_key=key)


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (8, 128.0), (20, 600.0), (500, 600.0)]:
        delays = [retry_delay(failures, base=1.0, cap=600.0) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1
