"""Signing in to the newsroom page: the session cookie, what it answers, how a session ends
(signing out, idling, its lifetime, its user disabled or given a new password), and that a
token is never taken from a cookie or a query string. On SQLite and PostgreSQL."""

from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.config import Settings
from app.models import SignInSession
from tests.support.clients import asgi_client
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, ADMIN_TOKEN, SLUG, publish_entry
from tests.support.people import PASSWORD, add_person
from tests.support.servers import running_app
from tests.support.sessions import (
    COOKIE,
    SECURE_COOKIE,
    SESSION,
    ago,
    cookie_header,
    set_session_times,
    sign_in,
)

IDLE_SECONDS = 60
LIFETIME_SECONDS = 3600
ENTRIES = f"/api/v1/blogs/{SLUG}/entries"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        session_idle_seconds=IDLE_SECONDS,
        session_lifetime_seconds=LIFETIME_SECONDS,
    )


def cookie_attributes(response: httpx.Response) -> tuple[str, str, dict[str, str | bool]]:
    """The one Set-Cookie of an answer: its name, value and attributes (lower-cased)."""
    [header] = response.headers.get_list("set-cookie")
    parsed = SimpleCookie()
    parsed.load(header)
    [(name, morsel)] = parsed.items()
    attributes = {key: value for key, value in morsel.items() if value}
    return name, morsel.value, attributes


async def audit_actions(client: httpx.AsyncClient) -> list[dict]:
    return (await client.get("/api/v1/audit", headers=ADMIN)).json()["items"]


async def test_signing_in_sets_an_httponly_strict_cookie_and_answers_the_user_roles_and_csrf_token(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="editor")

    # Logins are compared whatever their case.
    response = await client.post(SESSION, json={"login": "CORA@News.test", "password": PASSWORD})

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    name, secret, attributes = cookie_attributes(response)
    assert name == COOKIE and len(secret) >= 43
    assert attributes == {
        "httponly": True,
        "samesite": "strict",
        "path": "/",
        "max-age": str(LIFETIME_SECONDS),
    }
    body = response.json()
    assert body["user"]["id"] == cora.user_id and body["user"]["name"] == "Cora Lind"
    assert body["token"] is None and body["admin"] is False
    assert body["blogs"] == [{"slug": SLUG, "title": "Vote night", "role": "editor"}]
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 43
    assert body["csrf_token"] != secret

    # The browser sends the cookie back: who is signed in, and the same CSRF token.
    again = await client.get(SESSION)
    assert again.status_code == 200 and again.headers["cache-control"] == "no-store"
    assert again.json()["csrf_token"] == body["csrf_token"]
    assert again.json()["user"]["id"] == cora.user_id
    me = await client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["user"]["id"] == cora.user_id
    # Only the secret's hash is stored.
    async with app.state.services.database.read_session() as session:
        stored = list(await session.scalars(select(SignInSession)))
    assert [row.user_id for row in stored] == [cora.user_id]
    assert secret not in stored[0].secret_hash and len(stored[0].secret_hash) == 64


@pytest.mark.parametrize(
    ("public_base_url", "served_over"),
    [("https://live.example.org", "http"), ("http://127.0.0.1:8000", "https")],
)
async def test_over_https_the_cookie_is_secure_and_host_prefixed(
    database_url: str, public_base_url: str, served_over: str
) -> None:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        public_base_url=public_base_url,
    )
    async with running_app(settings) as app, asgi_client(app) as client:
        cora = await add_person(app, "Cora Lind")
        client.base_url = httpx.URL(f"{served_over}://bulletin.test")
        response = await client.post(SESSION, json={"login": cora.login, "password": PASSWORD})
        assert response.status_code == 201, response.text
        name, secret, attributes = cookie_attributes(response)
        assert name == SECURE_COOKIE
        assert attributes["secure"] is True and attributes["httponly"] is True
        assert attributes["samesite"] == "strict" and attributes["path"] == "/"
        assert "domain" not in attributes
        # It is the cookie sent back under that name that signs the request in.
        read = await client.get(SESSION, headers=cookie_header(SECURE_COOKIE, secret))
        assert read.status_code == 200
        assert (await client.get(SESSION, headers=cookie_header(COOKIE, secret))).status_code == 401


async def test_a_wrong_password_an_unknown_login_and_a_disabled_user_get_the_same_401(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    dora = await add_person(app, "Dora Holt")
    disabled = await client.patch(
        f"/api/v1/users/{dora.user_id}", json={"disabled": True}, headers=ADMIN
    )
    assert disabled.status_code == 200
    attempts = [
        {"login": cora.login, "password": "not the password at all"},
        {"login": "nobody@news.test", "password": "not the password at all"},
        {"login": dora.login, "password": PASSWORD},
    ]

    answers = [await client.post(SESSION, json=attempt) for attempt in attempts]

    for answer in answers:
        assert_error(answer, 401, "sign_in_failed")
        assert "set-cookie" not in answer.headers
    assert len({answer.text for answer in answers}) == 1
    # The same headers, but for the id every answer has of its own (app/logs.py).
    assert len({answer.headers["x-request-id"] for answer in answers}) == len(answers)
    assert (
        len(
            {
                tuple(sorted((k, v) for k, v in answer.headers.items() if k != "x-request-id"))
                for answer in answers
            }
        )
        == 1
    )
    # Audited, each the same way: the login as typed, nothing of whether it exists.
    failures = [r for r in await audit_actions(client) if r["action"] == "user.sign_in_failed"]
    assert [r["details"] for r in failures] == [
        {"login": "dora@news.test"},
        {"login": "nobody@news.test"},
        {"login": "cora@news.test"},
    ]
    assert {(r["actor_user_id"], r["actor_token_id"], r["via"]) for r in failures} == {
        (None, None, "session")
    }
    async with app.state.services.database.read_session() as session:
        assert list(await session.scalars(select(SignInSession))) == []


async def test_signing_out_ends_the_session_and_drops_its_cookie(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    signed = await sign_in(client, cora.login)

    response = await client.delete(SESSION, headers=signed.page_headers)

    assert response.status_code == 204
    name, value, attributes = cookie_attributes(response)
    assert (name, value, attributes["max-age"]) == (COOKIE, "", "0")
    # The cookie kept by a copy (another tab, a thief) is no good any more.
    for path in (SESSION, "/api/v1/me"):
        ended = await client.get(path, headers=signed.cookie_header)
        assert_error(ended, 401, "session_ended")
    records = await audit_actions(client)
    signed_out, signed_in = records[0], records[1]
    assert (signed_in["action"], signed_in["via"]) == ("user.signed_in", "session")
    assert (signed_out["action"], signed_out["via"]) == ("user.signed_out", "session")
    assert signed_in["actor_user_id"] == signed_out["actor_user_id"] == cora.user_id
    assert signed_out["details"] == {"user_id": cora.user_id}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"disabled": True}, "disabled"),
        ({"password": "a brand new passphrase"}, "password_changed"),
    ],
)
async def test_disabling_a_user_or_changing_its_password_ends_all_its_sessions_for_good(
    client: httpx.AsyncClient, app: FastAPI, blog: dict, change: dict, reason: str
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    async with asgi_client(app) as laptop, asgi_client(app) as phone:
        on_laptop = await sign_in(laptop, cora.login)
        on_phone = await sign_in(phone, cora.login)
        assert (await laptop.get(SESSION)).status_code == 200

        changed = await client.patch(f"/api/v1/users/{cora.user_id}", json=change, headers=ADMIN)
        assert changed.status_code == 200, changed.text

        for device, signed in ((laptop, on_laptop), (phone, on_phone)):
            assert_error(await device.get(SESSION), 401, "session_ended")
            # The same cookie again (the answer above told the client to drop it).
            refused = await device.post(
                ENTRIES,
                json={"headline": "Late", "status": "draft"},
                headers={**signed.cookie_header, **signed.page_headers},
            )
            assert_error(refused, 401, "session_ended")
        if reason == "disabled":
            enabled = await client.patch(
                f"/api/v1/users/{cora.user_id}", json={"disabled": False}, headers=ADMIN
            )
            assert enabled.status_code == 200
        # Ended for good: enabling the user again does not bring a session back.
        assert_error(
            await laptop.get(SESSION, headers=on_laptop.cookie_header), 401, "session_ended"
        )
        password = change.get("password", PASSWORD)
        again = await sign_in(laptop, cora.login, password)
        assert (await laptop.get(SESSION, headers=again.cookie_header)).status_code == 200
    drafts = await client.get(f"{ENTRIES}?status=draft", headers=ADMIN)
    assert drafts.json()["items"] == []
    ended = [r for r in await audit_actions(client) if r["action"] == "user.signed_out"]
    assert [r["details"] for r in ended] == [
        {"user_id": cora.user_id, "reason": reason, "sessions": 2}
    ]


async def test_a_session_ends_after_the_idle_time_without_a_request(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    signed = await sign_in(client, cora.login)

    # Nearly idle for too long: a request now keeps it alive, and moves the idle clock.
    await set_session_times(app, last_seen_at=ago(IDLE_SECONDS - 5))
    assert (await client.get(SESSION)).status_code == 200
    async with app.state.services.database.read_session() as session:
        seen = await session.scalar(select(SignInSession.last_seen_at))
    assert seen is not None and seen > ago(5)
    assert (await client.get(SESSION)).status_code == 200

    await set_session_times(app, last_seen_at=ago(IDLE_SECONDS + 1))
    assert_error(await client.get(SESSION), 401, "session_ended")
    assert_error(await client.get("/api/v1/me", headers=signed.cookie_header), 401, "session_ended")


async def test_a_session_ends_at_the_end_of_its_lifetime_however_busy(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    signed = await sign_in(client, cora.login)
    expires_at = signed.body["expires_at"]
    assert signed.body["idle_expires_at"] < expires_at

    await set_session_times(app, expires_at=ago(1), last_seen_at=ago(0))

    assert_error(await client.get(SESSION), 401, "session_ended")


async def test_a_401_for_an_ended_session_drops_the_cookie(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    await sign_in(client, cora.login)
    await set_session_times(app, expires_at=ago(1))

    ended = await client.get(SESSION)

    assert_error(ended, 401, "session_ended")
    name, value, attributes = cookie_attributes(ended)
    assert (name, value, attributes["max-age"]) == (COOKIE, "", "0")
    # The browser dropped it: the next request is simply not signed in.
    assert_error(await client.get(SESSION), 401, "unauthorised")


async def test_signing_in_again_from_the_same_browser_ends_its_earlier_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    dora = await add_person(app, "Dora Holt")
    first = await sign_in(client, cora.login)

    second = await sign_in(client, dora.login)

    assert_error(await client.get(SESSION, headers=first.cookie_header), 401, "session_ended")
    now = await client.get(SESSION, headers=second.cookie_header)
    assert now.json()["user"]["id"] == dora.user_id


async def test_a_public_read_with_an_ended_session_is_an_anonymous_read(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    editor = await add_person(app, "Eddie Grant", role="editor")
    await publish_entry(client, headline="Polls close")
    await sign_in(client, editor.login)
    await set_session_times(app, expires_at=ago(1))

    # A signed-in editor's reader page keeps working after the session ends.
    listing = await client.get(ENTRIES)
    assert listing.status_code == 200 and len(listing.json()["items"]) == 1
    assert_error(await client.get(f"{ENTRIES}?status=draft"), 401, "unauthorised")


async def test_a_token_is_never_taken_from_a_cookie_or_a_query_string(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    eddie = await add_person(app, "Eddie Grant", role="editor")
    draft = await publish_entry(client, headers=eddie.headers, headline="Not yet", status="draft")
    private_reads = ["/api/v1/me", f"{ENTRIES}?status=draft", f"{ENTRIES}/{draft['id']}"]

    for cookie in (COOKIE, SECURE_COOKIE, "Authorization", "token"):
        for path in private_reads:
            response = await client.get(path, headers=cookie_header(cookie, eddie.secret))
            assert response.status_code in (401, 404), (cookie, path, response.text)
            assert "Not yet" not in response.text
    for parameter in ("token", "access_token", "bearer"):
        for path in private_reads:
            joiner = "&" if "?" in path else "?"
            response = await client.get(f"{path}{joiner}{parameter}={eddie.secret}")
            assert response.status_code in (401, 404), (parameter, path, response.text)
            assert "Not yet" not in response.text
    # A cookie named like the session's, holding a token's secret, signs no write in either.
    written = await client.post(
        ENTRIES,
        json={"headline": "Forged", "status": "draft"},
        headers={
            **cookie_header(COOKIE, eddie.secret),
            "Origin": "http://bulletin.test",
            "X-CSRF-Token": "anything",
        },
    )
    assert written.status_code in (401, 403), written.text
    assert_error(
        await client.get(SESSION, headers=cookie_header(COOKIE, eddie.secret)), 401, "session_ended"
    )
    # In the Authorization header the same token works, as it always did.
    me = await client.get("/api/v1/me", headers=eddie.headers)
    assert me.status_code == 200 and me.json()["token"]["id"] == eddie.token_id
    drafts = await client.get(f"{ENTRIES}?status=draft", headers=eddie.headers)
    assert [entry["headline"] for entry in drafts.json()["items"]] == ["Not yet"]


async def test_reading_the_session_needs_the_cookie_not_a_token(
    client: httpx.AsyncClient,
) -> None:
    assert_error(await client.get(SESSION), 401, "unauthorised")
    assert_error(await client.get(SESSION, headers=ADMIN), 401, "unauthorised")
    assert_error(await client.delete(SESSION, headers=ADMIN), 401, "unauthorised")


async def test_a_signed_in_editors_read_of_a_private_entry_is_never_kept_for_anyone_else(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    eddie = await add_person(app, "Eddie Grant", role="editor")
    draft = await publish_entry(
        client, headers=cora.headers, headline="Casualty figure unconfirmed", status="submitted"
    )
    async with asgi_client(app) as browser:
        await sign_in(browser, eddie.login)
        for url in (f"{ENTRIES}/{draft['id']}", f"{ENTRIES}?status=submitted"):
            read = await browser.get(url)
            assert read.status_code == 200 and "Casualty" in read.text
            assert read.headers["cache-control"] == "private, no-store"
    for url in (f"{ENTRIES}/{draft['id']}", f"{ENTRIES}?status=submitted"):
        for _ in range(2):  # the second would come from memory if anything had been kept
            anonymous = await client.get(url)
            assert anonymous.status_code in (401, 404)
            assert "Casualty" not in anonymous.text
