"""Webhooks through the API, on SQLite and PostgreSQL: registering, delivery state, and
every refusal. Deliveries go to a real HTTP receiver that verifies each signature."""

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.config import Settings
from app.models import Blog, Event, Webhook, utc_now
from app.webhooks.signing import SecretBox
from app.webhooks.worker import WebhookWorker
from tests.support.clients import asgi_client
from tests.support.errors import assert_error
from tests.support.factories import (
    ADMIN,
    ADMIN_TOKEN,
    SECRET_KEY,
    create_blog,
    publish_entry,
    read_log,
)
from tests.support.servers import running_app
from tests.support.waiting import eventually
from tests.support.webhook_receiver import Receiver, new_signing_secret

DISABLE_AFTER = 3
WAIT_SECONDS = 30
HOOKS = "/api/v1/blogs/vote-night/webhooks"
STRICT = pytest.mark.parametrize("overrides", [{"webhook_allow_private_targets": False}])
WITHOUT_KEY = pytest.mark.parametrize("overrides", [{"secret_key": None}])


def webhook_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "secret_key": SECRET_KEY,
        "webhook_allow_private_targets": True,
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_cap_seconds": 0.2,
        "webhook_disable_after_failures": DISABLE_AFTER,
        "webhook_poll_seconds": 0.2,
        "webhook_read_timeout_seconds": 5,
        "rate_limit_enabled": False,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def overrides() -> dict[str, object]:
    """Settings a test changes, by parametrizing this fixture."""
    return {}


@pytest.fixture
def settings(database_url: str, overrides: dict[str, object]) -> Settings:
    return webhook_settings(database_url, **overrides)


async def register(client: httpx.AsyncClient, url: str, secret: str, **extra: object) -> dict:
    response = await client.post(HOOKS, json={"url": url, "secret": secret, **extra}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def publish(client: httpx.AsyncClient, headline: str) -> dict:
    return await publish_entry(client, headline=headline)


async def received(receiver: Receiver, count: int) -> list:
    return await asyncio.to_thread(receiver.wait_for_accepted, count)


async def until_read(client: httpx.AsyncClient, path: str, holds: Callable[[dict], bool]) -> dict:
    """Read `path` until `holds` is true of the answer (the worker records after the
    receiver answers)."""

    async def read() -> dict:
        response = await client.get(path, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    return await eventually(read, WAIT_SECONDS, f"{path} to change", holds=holds)


async def stored_payloads(app: FastAPI) -> dict[int, bytes]:
    async with app.state.services.database.read_session() as session:
        return {
            seq: bytes(payload)
            for seq, payload in await session.execute(select(Event.seq, Event.payload))
        }


# --- delivery ------------------------------------------------------------------


async def test_a_webhook_receives_each_event_after_registration_once_in_order_signed(
    client: httpx.AsyncClient, app: FastAPI, blog: dict, receiver: Receiver, secret: str
) -> None:
    before = await publish(client, "Published before the webhook")
    hook = await register(client, receiver.url, secret, description="Partner desk")
    assert hook["delivered_seq"] == 1 and hook["pending"] == 0
    entry = await publish(client, "Polls close")
    await client.patch(
        f"/api/v1/blogs/vote-night/entries/{entry['id']}",
        json={"headline": "Polls have closed"},
        headers=ADMIN,
    )
    await client.delete(f"/api/v1/blogs/vote-night/entries/{before['id']}", headers=ADMIN)
    await client.patch("/api/v1/blogs/vote-night", json={"status": "ended"}, headers=ADMIN)

    arrivals = await received(receiver, 5)

    payloads = await stored_payloads(app)
    assert [a.seq for a in receiver.arrivals] == [2, 3, 4, 5, 6]
    assert all(a.signature_valid for a in arrivals)
    assert [a.body for a in arrivals] == [payloads[seq] for seq in (2, 3, 4, 5, 6)]
    assert [a.event["type"] for a in arrivals] == [
        "entry.created",
        "entry.updated",
        "entry.deleted",
        "entry.redacted",  # the deleted entry's seq 1, from before the webhook, rewritten
        "blog.ended",
    ]
    assert arrivals[3].event["redacted_seqs"] == [1]
    assert [a.message_id for a in arrivals] == [
        f"msg_bulletin_{hook['id']}_{s}" for s in (2, 3, 4, 5, 6)
    ]
    assert all(a.headers["content-type"] == "application/json" for a in arrivals)
    assert [a.event for a in arrivals] == await read_log(client, "vote-night", since=1)

    state = await until_read(client, f"{HOOKS}/{hook['id']}", lambda s: s["pending"] == 0)
    assert state["delivered_seq"] == state["head_seq"] == 6
    assert state["consecutive_failures"] == 0
    assert state["last_status_code"] == 200 and state["last_error"] is None
    assert state["next_attempt_at"] is None and state["active"] is True
    assert state["description"] == "Partner desk"
    attempts = (await client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=ADMIN)).json()
    assert [(a["seq"], a["attempt"], a["delivered"]) for a in attempts] == [
        (6, 1, True),
        (5, 1, True),
        (4, 1, True),
        (3, 1, True),
        (2, 1, True),
    ]


async def test_a_failing_receiver_gets_the_event_retried_then_delivered_once(
    client: httpx.AsyncClient, blog: dict, secret: str
) -> None:
    receiver = Receiver(secret, answer=lambda n: 503 if n <= 2 else 200).start()
    try:
        hook = await register(client, receiver.url, secret)
        await publish(client, "Turnout is high")
        await publish(client, "First results")

        await received(receiver, 2)
    finally:
        receiver.stop()

    assert [(a.seq, a.status) for a in receiver.arrivals] == [
        (1, 503),
        (1, 503),
        (1, 200),
        (2, 200),
    ]
    first = receiver.arrivals[:3]
    assert len({a.message_id for a in first}) == 1 and len({a.body for a in first}) == 1
    assert all(a.signature_valid for a in receiver.arrivals)
    attempts = await until_read(client, f"{HOOKS}/{hook['id']}/deliveries", lambda a: len(a) == 4)
    assert [(a["seq"], a["attempt"], a["delivered"], a["status_code"]) for a in attempts] == [
        (2, 1, True, 200),
        (1, 3, True, 200),
        (1, 2, False, 503),
        (1, 1, False, 503),
    ]
    assert attempts[-1]["error"] == "the endpoint answered 503"
    assert attempts[-1]["message_id"] == f"msg_bulletin_{hook['id']}_1"
    state = (await client.get(f"{HOOKS}/{hook['id']}", headers=ADMIN)).json()
    assert state["consecutive_failures"] == 0 and state["delivered_seq"] == 2


async def test_a_long_run_of_failures_disables_the_webhook_until_it_is_re_enabled(
    client: httpx.AsyncClient, blog: dict, secret: str
) -> None:
    healthy = False
    receiver = Receiver(secret, answer=lambda _n: 200 if healthy else 500).start()
    try:
        hook = await register(client, receiver.url, secret)
        await publish(client, "Counting starts")
        state = await until_read(client, f"{HOOKS}/{hook['id']}", lambda s: not s["active"])
        assert len(receiver.arrivals) == DISABLE_AFTER
        assert state["consecutive_failures"] == DISABLE_AFTER
        assert state["disabled_reason"] == (
            f"disabled after {DISABLE_AFTER} failed attempts in a row; "
            "last: the endpoint answered 500"
        )
        assert state["disabled_at"] is not None
        assert state["pending"] == 1 and state["next_attempt_at"] is None
        assert state["last_status_code"] == 500

        healthy = True
        response = await client.patch(f"{HOOKS}/{hook['id']}", json={"active": True}, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["disabled_reason"] is None
        assert response.json()["consecutive_failures"] == 0

        await received(receiver, 1)
    finally:
        receiver.stop()
    assert [(a.seq, a.status) for a in receiver.arrivals] == [(1, 500)] * DISABLE_AFTER + [(1, 200)]


async def test_a_paused_webhook_keeps_its_place_and_catches_up_when_resumed(
    client: httpx.AsyncClient, blog: dict, receiver: Receiver, secret: str
) -> None:
    hook = await register(client, receiver.url, secret)
    paused = await client.patch(f"{HOOKS}/{hook['id']}", json={"active": False}, headers=ADMIN)
    assert paused.json()["active"] is False
    assert paused.json()["disabled_reason"] == "paused by an admin"
    await publish(client, "While paused")
    await publish(client, "Still paused")
    state = (await client.get(f"{HOOKS}/{hook['id']}", headers=ADMIN)).json()
    assert state["pending"] == 2 and state["next_attempt_at"] is None
    assert receiver.arrivals == []

    await client.patch(f"{HOOKS}/{hook['id']}", json={"active": True}, headers=ADMIN)

    assert [a.seq for a in await received(receiver, 2)] == [1, 2]


async def test_two_processes_on_one_database_deliver_each_event_once_in_order(
    client: httpx.AsyncClient, settings: Settings, blog: dict, receiver: Receiver, secret: str
) -> None:
    await register(client, receiver.url, secret)
    async with running_app(settings) as application, asgi_client(application) as other:
        for number in range(1, 21):
            await publish(client if number % 2 else other, f"Result {number}")

        await received(receiver, 20)

    assert [a.seq for a in receiver.arrivals] == list(range(1, 21))
    assert len({a.message_id for a in receiver.arrivals}) == 20


async def test_several_webhooks_of_one_blog_each_get_every_event(
    client: httpx.AsyncClient, blog: dict, receiver: Receiver, secret: str
) -> None:
    second_secret = new_signing_secret()
    second = Receiver(second_secret).start()
    try:
        await register(client, receiver.url, secret)
        await register(client, second.url, second_secret)
        for number in range(3):
            await publish(client, f"Update {number}")
        await received(receiver, 3)
        await received(second, 3)
    finally:
        second.stop()
    assert [a.seq for a in receiver.arrivals] == [a.seq for a in second.arrivals] == [1, 2, 3]
    assert all(a.signature_valid for a in receiver.arrivals + second.arrivals)


async def backlog_under_way(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, count: int, held: int
) -> dict:
    """A webhook with `count` events pending, all in the worker's first batch, whose
    receiver is holding its answer to seq `held`."""
    hook = await register(client, receiver.url, secret)
    await client.patch(f"{HOOKS}/{hook['id']}", json={"active": False}, headers=ADMIN)
    for number in range(1, count + 1):
        await publish(client, f"Result {number}")
    receiver.hold_seq = held
    await client.patch(f"{HOOKS}/{hook['id']}", json={"active": True}, headers=ADMIN)
    assert await asyncio.to_thread(receiver.holding.wait, WAIT_SECONDS)
    return hook


async def test_a_new_url_and_secret_apply_from_the_next_attempt_of_a_batch_under_way(
    client: httpx.AsyncClient, blog: dict, receiver: Receiver, secret: str
) -> None:
    new_secret = new_signing_secret()
    new = Receiver(new_secret).start()
    try:
        hook = await backlog_under_way(client, receiver, secret, count=10, held=2)
        changed = await client.patch(
            f"{HOOKS}/{hook['id']}", json={"url": new.url, "secret": new_secret}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
        receiver.released.set()

        arrivals = await received(new, 8)
    finally:
        new.stop()

    # Only the attempt already under way went to the old address.
    assert [(a.seq, a.status) for a in receiver.arrivals] == [(1, 200), (2, 200)]
    assert [a.seq for a in new.arrivals] == list(range(3, 11))
    assert all(a.signature_valid for a in receiver.arrivals + arrivals)


async def test_pausing_stops_a_batch_under_way_after_the_attempt_in_flight(
    client: httpx.AsyncClient, app: FastAPI, blog: dict, receiver: Receiver, secret: str
) -> None:
    hook = await backlog_under_way(client, receiver, secret, count=10, held=2)
    paused = await client.patch(f"{HOOKS}/{hook['id']}", json={"active": False}, headers=ADMIN)
    assert paused.status_code == 200, paused.text
    receiver.released.set()

    async def lease() -> dict:
        async with app.state.services.database.read_session() as session:
            webhook = await session.get(Webhook, hook["id"])
            assert webhook is not None
            return {"delivered_seq": webhook.delivered_seq, "owner": webhook.lease_owner}

    # The worker gives the lease back once it has stopped sending.
    state = await eventually(
        lease,
        WAIT_SECONDS,
        "the worker to give the lease back",
        holds=lambda s: s["delivered_seq"] == 2 and s["owner"] is None,
    )
    assert state["delivered_seq"] == 2
    assert [a.seq for a in receiver.arrivals] == [1, 2]


async def stored_webhook(
    app: FastAPI, url: str, secret: str, delivered_seq: int, waiting_since: timedelta
) -> int:
    """A webhook row as the registry stores it, due since `waiting_since` ago."""
    async with app.state.services.database.write_session() as session:
        blog_id = await session.scalar(select(Blog.id).where(Blog.slug == "vote-night"))
        webhook = Webhook(
            blog_id=blog_id,
            url=url,
            secret_ciphertext=SecretBox(SECRET_KEY).seal(secret),
            delivered_seq=delivered_seq,
            next_attempt_at=utc_now() - waiting_since,
        )
        session.add(webhook)
        await session.flush()
        return webhook.id


@WITHOUT_KEY
@pytest.mark.parametrize(
    "turn", [{"turn_events": 2}, {"turn_seconds": 0.0}], ids=["events", "seconds"]
)
async def test_webhooks_with_backlogs_give_their_slots_back_so_a_waiting_webhook_is_served(
    client: httpx.AsyncClient, app: FastAPI, database_url: str, blog: dict, turn: dict
) -> None:
    # The app runs no worker (it has no secret key); this one has two slots, and waits for
    # an answer longer than a receiver holds one, so no slot is freed by a timeout.
    worker = WebhookWorker(
        app.state.services.database,
        webhook_settings(database_url, webhook_read_timeout_seconds=WAIT_SECONDS * 2),
        SecretBox(SECRET_KEY),
        parallel=2,
        **turn,
    )
    slow_secrets = [new_signing_secret(), new_signing_secret()]
    fast_secret = new_signing_secret()
    slow = [Receiver(secret).start() for secret in slow_secrets]
    fast = Receiver(fast_secret).start()
    try:
        for number in range(1, 7):
            await publish(client, f"Precinct {number}")
        # Each slow receiver holds its answer to the last event until it is released below:
        # a slow webhook that never gave its slot back would keep it until then.
        slow_ids = []
        for receiver, secret in zip(slow, slow_secrets, strict=True):
            receiver.hold_seq = 6
            slow_ids.append(
                await stored_webhook(app, receiver.url, secret, 0, timedelta(minutes=2))
            )
        await stored_webhook(app, fast.url, fast_secret, 5, timedelta(minutes=1))
        await worker.start()

        # Well within the time the slow receivers hold their answers.
        served = await asyncio.to_thread(fast.wait_for_accepted, 1, WAIT_SECONDS / 3)
        assert [a.seq for a in served] == [6]

        async with app.state.services.database.read_session() as session:
            cursors = (
                await session.scalars(select(Webhook.delivered_seq).where(Webhook.id.in_(slow_ids)))
            ).all()
        assert len(cursors) == 2 and all(cursor < 6 for cursor in cursors)
        for receiver in slow:
            receiver.released.set()
        for receiver in slow:
            await received(receiver, 6)
    finally:
        for receiver in slow:
            receiver.released.set()
        await worker.stop()
        for receiver in [*slow, fast]:
            receiver.stop()

    for receiver in slow:
        assert [a.seq for a in receiver.arrivals] == [1, 2, 3, 4, 5, 6]
        assert all(a.signature_valid for a in receiver.arrivals)


@STRICT
async def test_a_target_that_resolves_to_a_private_address_is_refused_at_delivery_time(
    client: httpx.AsyncClient, app: FastAPI, blog: dict, receiver: Receiver, secret: str
) -> None:
    # Stored as if the name had pointed at a public address when it was registered.
    async with app.state.services.database.write_session() as session:
        blog_id = await session.scalar(select(Blog.id).where(Blog.slug == "vote-night"))
        webhook = Webhook(
            blog_id=blog_id,
            url=receiver.url.replace("127.0.0.1", "localhost"),
            secret_ciphertext=SecretBox(SECRET_KEY).seal(secret),
            delivered_seq=0,
            next_attempt_at=utc_now(),
        )
        session.add(webhook)
    await publish(client, "Not for loopback")

    state = await until_read(
        client, f"{HOOKS}/{webhook.id}", lambda s: s["consecutive_failures"] >= 1
    )

    assert "loopback address" in state["last_error"]
    assert state["last_status_code"] is None and state["delivered_seq"] == 0
    assert receiver.arrivals == []


# --- refusals ------------------------------------------------------------------

GOOD_URL = "https://partner.example/hooks/bulletin"
GOOD_SECRET = new_signing_secret()


async def webhooks_of(client: httpx.AsyncClient, slug: str = "vote-night") -> list[dict]:
    response = await client.get(f"/api/v1/blogs/{slug}/webhooks", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": GOOD_URL}, "secret"),
        ({"secret": GOOD_SECRET}, "url"),
        ({"url": "ftp://partner.example/hook", "secret": GOOD_SECRET}, "url"),
        ({"url": "/hooks/bulletin", "secret": GOOD_SECRET}, "url"),
        ({"url": GOOD_URL, "secret": "a-long-password-that-is-no-standard-secret"}, "secret"),
        ({"url": GOOD_URL, "secret": "whsec_" + "QUJD" * 4}, "secret"),
        ({"url": GOOD_URL, "secret": "whsec_not base64 at all, not at all!!"}, "secret"),
        ({"url": GOOD_URL, "secret": GOOD_SECRET, "description": "x" * 301}, "description"),
        ({"url": GOOD_URL, "secret": GOOD_SECRET, "events": ["entry.created"]}, "events"),
        ({"url": GOOD_URL, "secret": 12345}, "secret"),
    ],
)
async def test_invalid_registrations_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, blog: dict, body: dict, field: str
) -> None:
    response = await client.post(HOOKS, json=body, headers=ADMIN)

    assert_error(response, 422, "invalid_input", {field})
    if isinstance(body.get("secret"), str):
        assert body["secret"] not in response.text
    assert await webhooks_of(client) == []


@STRICT
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://2130706433/hook",
        "http://[::1]:9/hook",
        "http://10.1.2.3/hook",
        "http://172.16.5.4/hook",
        "http://192.168.0.10/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[fec0::1]/hook",
        "http://224.0.0.1/hook",
        "http://[ff02::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::]/hook",
        "http://240.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "https://user:password@8.8.8.8/hook",
    ],
)
async def test_targets_that_are_not_public_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, blog: dict, url: str
) -> None:
    response = await client.post(HOOKS, json={"url": url, "secret": GOOD_SECRET}, headers=ADMIN)

    assert_error(response, 422, "webhook_target_refused", {"url"})
    assert await webhooks_of(client) == []


@STRICT
async def test_public_targets_are_accepted_and_a_refused_new_url_changes_nothing(
    client: httpx.AsyncClient, blog: dict
) -> None:
    first = await register(client, "https://8.8.8.8/hooks/bulletin", GOOD_SECRET)
    await register(client, "https://[2001:4860:4860::8888]/hooks/bulletin", GOOD_SECRET)

    response = await client.patch(
        f"{HOOKS}/{first['id']}", json={"url": "http://127.0.0.1/hook"}, headers=ADMIN
    )

    assert_error(response, 422, "webhook_target_refused", {"url"})
    assert [hook["url"] for hook in await webhooks_of(client)] == [
        "https://8.8.8.8/hooks/bulletin",
        "https://[2001:4860:4860::8888]/hooks/bulletin",
    ]


@WITHOUT_KEY
async def test_without_a_secret_key_registering_is_refused_and_the_rest_works(
    client: httpx.AsyncClient, blog: dict
) -> None:
    response = await client.post(
        HOOKS, json={"url": GOOD_URL, "secret": GOOD_SECRET}, headers=ADMIN
    )

    error = assert_error(response, 503, "secret_key_not_configured")
    assert "BULLETIN_SECRET_KEY" in error["message"]
    assert await webhooks_of(client) == []
    entry = await publish(client, "Still publishing")
    assert (await read_log(client, "vote-night"))[0]["entry"]["id"] == entry["id"]


async def test_webhooks_of_an_unknown_blog_are_not_found(client: httpx.AsyncClient) -> None:
    path = "/api/v1/blogs/no-such-blog/webhooks"
    created = await client.post(path, json={"url": GOOD_URL, "secret": GOOD_SECRET}, headers=ADMIN)
    assert_error(created, 404, "not_found")
    assert_error(await client.get(path, headers=ADMIN), 404, "not_found")
    assert_error(await client.get(f"{path}/1", headers=ADMIN), 404, "not_found")


async def test_an_unknown_webhook_is_not_found(
    client: httpx.AsyncClient, blog: dict, receiver: Receiver, secret: str
) -> None:
    await create_blog(client, "recount", "Recount")
    hook = await register(client, receiver.url, secret)
    elsewhere = f"/api/v1/blogs/recount/webhooks/{hook['id']}"
    for path in (f"{HOOKS}/999", f"{HOOKS}/0", f"{HOOKS}/99999999999", elsewhere):
        assert_error(await client.get(path, headers=ADMIN), 404, "not_found")
        assert_error(await client.get(f"{path}/deliveries", headers=ADMIN), 404, "not_found")
        patched = await client.patch(path, json={"active": False}, headers=ADMIN)
        assert_error(patched, 404, "not_found")
        assert_error(await client.delete(path, headers=ADMIN), 404, "not_found")
    assert [h["active"] for h in await webhooks_of(client)] == [True]


async def test_webhooks_need_an_admin_token(
    client: httpx.AsyncClient,
    blog: dict,
    publish_headers: dict[str, str],
    receiver: Receiver,
    secret: str,
) -> None:
    hook = await register(client, receiver.url, secret)
    calls = [
        ("POST", HOOKS, {"url": receiver.url, "secret": secret}),
        ("GET", HOOKS, None),
        ("GET", f"{HOOKS}/{hook['id']}", None),
        ("GET", f"{HOOKS}/{hook['id']}/deliveries", None),
        ("PATCH", f"{HOOKS}/{hook['id']}", {"active": False}),
        ("DELETE", f"{HOOKS}/{hook['id']}", None),
    ]
    for method, path, body in calls:
        denied = await client.request(method, path, json=body, headers=publish_headers)
        assert_error(denied, 403, "forbidden")
        anonymous = await client.request(method, path, json=body)
        assert_error(anonymous, 401, "unauthorised")
    assert [(h["id"], h["active"]) for h in await webhooks_of(client)] == [(hook["id"], True)]


async def test_patch_refuses_nulls_and_unknown_fields_and_changes_nothing(
    client: httpx.AsyncClient, blog: dict, receiver: Receiver, secret: str
) -> None:
    hook = await register(client, receiver.url, secret)
    for body, field in (
        ({"active": None}, "active"),
        ({"url": None}, "url"),
        ({"active": "sometimes"}, "active"),
        ({"delivered_seq": 0}, "delivered_seq"),
        ({"secret": "not-a-standard-secret-but-long-enough"}, "secret"),
    ):
        response = await client.patch(f"{HOOKS}/{hook['id']}", json=body, headers=ADMIN)
        assert_error(response, 422, "invalid_input", {field})
    assert await webhooks_of(client) == [hook]


async def test_deleting_a_webhook_removes_it_and_its_history(
    client: httpx.AsyncClient, blog: dict, receiver: Receiver, secret: str
) -> None:
    hook = await register(client, receiver.url, secret)
    await publish(client, "One")
    await received(receiver, 1)

    response = await client.delete(f"{HOOKS}/{hook['id']}", headers=ADMIN)

    assert response.status_code == 204
    assert await webhooks_of(client) == []
    assert_error(await client.get(f"{HOOKS}/{hook['id']}", headers=ADMIN), 404, "not_found")


async def test_the_secret_is_never_returned_logged_or_stored_in_plain_text(
    client: httpx.AsyncClient, app: FastAPI, blog: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first, rotated = new_signing_secret(), new_signing_secret()
    receiver = Receiver(rotated).start()
    try:
        hook = await register(client, receiver.url, first)
        answers = [
            await client.patch(f"{HOOKS}/{hook['id']}", json={"secret": rotated}, headers=ADMIN),
            await client.get(HOOKS, headers=ADMIN),
            await client.get(f"{HOOKS}/{hook['id']}", headers=ADMIN),
        ]
        await publish(client, "Signed with the new secret")
        arrival = (await received(receiver, 1))[0]
        answers.append(await client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=ADMIN))
    finally:
        receiver.stop()

    assert arrival.signature_valid
    assert "secret" not in hook
    for answer in answers:
        assert first not in answer.text and rotated not in answer.text
        assert "secret" not in answer.text
    assert first not in caplog.text and rotated not in caplog.text
    async with app.state.services.database.read_session() as session:
        stored = bytes(await session.scalar(select(Webhook.secret_ciphertext)))
    for plain in (first, rotated):
        assert plain.encode() not in stored
        assert plain.removeprefix("whsec_").encode() not in stored
    assert SecretBox(SECRET_KEY).open(stored) == rotated
