"""CSRF: a write that a session cookie signs in must come from this server's own page, with
the session's CSRF token. Every other write is refused with 403 `csrf_failed` and writes
nothing; tokens in `Authorization` need neither. On SQLite and PostgreSQL."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.clients import asgi_client
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, SLUG, publish_entry
from tests.support.people import Person, add_person
from tests.support.sessions import SESSION, SignedIn, sign_in

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
SERVED_ORIGIN = "http://bulletin.test"  # the test client's: this server as the request reached it
PUBLIC_ORIGIN = "http://127.0.0.1:8000"  # BULLETIN_PUBLIC_BASE_URL's default


@dataclass
class Desk:
    owner: Person
    contributor: Person
    entry_id: int
    browser: httpx.AsyncClient
    signed: SignedIn
    other: SignedIn  # the contributor's session, in another browser


@pytest.fixture
async def desk(client: httpx.AsyncClient, app: FastAPI, blog: dict) -> Any:
    owner = await add_person(app, "Olive Park", role="owner")
    contributor = await add_person(app, "Cora Lind", role="contributor")
    entry = await publish_entry(client, headline="Polls close")
    async with asgi_client(app) as browser, asgi_client(app) as elsewhere:
        signed = await sign_in(browser, owner.login)
        other = await sign_in(elsewhere, contributor.login)
        yield Desk(owner, contributor, entry["id"], browser, signed, other)


def writes(desk: Desk) -> dict[str, tuple[str, str, dict | None]]:
    """One write of each method an owner's page makes."""
    return {
        "create entry": ("POST", ENTRIES, {"headline": "Forged", "status": "draft"}),
        "edit entry": ("PATCH", f"{ENTRIES}/{desk.entry_id}", {"headline": "Forged"}),
        "delete entry": ("DELETE", f"{ENTRIES}/{desk.entry_id}", None),
        "give a role": (
            "PUT",
            f"/api/v1/blogs/{SLUG}/members/{desk.contributor.user_id}",
            {"role": "editor"},
        ),
        "change settings": (
            "PATCH",
            f"/api/v1/blogs/{SLUG}/settings",
            {"contributors_may_publish": True},
        ),
        "sign out": ("DELETE", SESSION, None),
    }


WRITES = pytest.mark.parametrize(
    "write",
    ["create entry", "edit entry", "delete entry", "give a role", "change settings", "sign out"],
)


def refused_headers(desk: Desk) -> dict[str, dict[str, str]]:
    token = desk.signed.csrf_token
    return {
        "neither": {},
        "token without Origin": {"X-CSRF-Token": token},
        "Origin without token": {"Origin": SERVED_ORIGIN},
        "wrong token": {"Origin": SERVED_ORIGIN, "X-CSRF-Token": token[:-2] + "xx"},
        "another session's token": {"Origin": SERVED_ORIGIN, "X-CSRF-Token": desk.other.csrf_token},
        "another site": {"Origin": "https://evil.example", "X-CSRF-Token": token},
        "a sandboxed frame": {"Origin": "null", "X-CSRF-Token": token},
        "another port": {"Origin": "http://bulletin.test:8080", "X-CSRF-Token": token},
        "another scheme": {"Origin": "https://bulletin.test", "X-CSRF-Token": token},
    }


async def snapshot(client: httpx.AsyncClient) -> list[Any]:
    """Everything a write of these could change, read with the admin token."""
    paths = [
        f"{ENTRIES}?status=draft",
        ENTRIES,
        f"/api/v1/blogs/{SLUG}/events?since=0",
        f"/api/v1/blogs/{SLUG}/members",
        f"/api/v1/blogs/{SLUG}/settings",
        "/api/v1/audit?limit=500",
    ]
    return [(await client.get(path, headers=ADMIN)).json() for path in paths]


@WRITES
async def test_a_cookie_signed_write_without_this_servers_origin_and_token_is_refused(
    client: httpx.AsyncClient, desk: Desk, write: str
) -> None:
    method, path, body = writes(desk)[write]
    before = await snapshot(client)

    for case, headers in refused_headers(desk).items():
        response = await desk.browser.request(method, path, json=body, headers=headers)
        error = assert_error(response, 403, "csrf_failed")
        assert error["message"], case

    assert await snapshot(client) == before
    # The session itself is untouched: even a refused sign-out left it signed in.
    assert (await desk.browser.get(SESSION)).status_code == 200


@WRITES
async def test_a_write_from_this_servers_page_with_the_sessions_token_is_made(
    client: httpx.AsyncClient, desk: Desk, write: str
) -> None:
    method, path, body = writes(desk)[write]
    before = await snapshot(client)

    response = await desk.browser.request(method, path, json=body, headers=desk.signed.page_headers)

    assert response.status_code in (200, 201, 204), response.text
    assert await snapshot(client) != before
    records = (await client.get("/api/v1/audit", headers=ADMIN)).json()["items"]
    assert (records[0]["actor_user_id"], records[0]["via"]) == (desk.owner.user_id, "session")


async def test_the_public_base_urls_origin_is_this_servers_too(desk: Desk) -> None:
    headers = {"Origin": PUBLIC_ORIGIN, "X-CSRF-Token": desk.signed.csrf_token}

    response = await desk.browser.post(
        ENTRIES, json={"headline": "From the public address", "status": "draft"}, headers=headers
    )

    assert response.status_code == 201, response.text


async def test_a_token_in_authorization_needs_no_origin_and_no_csrf_token(desk: Desk) -> None:
    # The browser also holds a session cookie: the token is what signs this request in.
    response = await desk.browser.post(
        ENTRIES, json={"headline": "From a tool", "status": "draft"}, headers=desk.owner.headers
    )

    assert response.status_code == 201, response.text
    records = (await desk.browser.get("/api/v1/audit", headers=ADMIN)).json()["items"]
    assert (records[0]["via"], records[0]["actor_token_id"]) == ("token", desk.owner.token_id)


async def test_reads_with_the_cookie_need_no_csrf_token(desk: Desk) -> None:
    for path in (SESSION, "/api/v1/me", f"{ENTRIES}?status=draft", f"/api/v1/blogs/{SLUG}/members"):
        response = await desk.browser.get(path)
        assert response.status_code == 200, (path, response.text)


async def test_signing_in_from_another_sites_page_is_refused_and_makes_no_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cora = await add_person(app, "Cora Lind")
    attempt = {"login": cora.login, "password": "correct horse battery staple"}

    for origin in ("https://evil.example", "null"):
        refused = await client.post(SESSION, json=attempt, headers={"Origin": origin})
        assert_error(refused, 403, "csrf_failed")
        assert "set-cookie" not in refused.headers
    records = (await client.get("/api/v1/audit", headers=ADMIN)).json()["items"]
    assert [r["action"] for r in records if r["action"].startswith("user.sign")] == []

    # From this server's page, or from a client that is not a page (no Origin), it works.
    assert (await client.post(SESSION, json=attempt, headers={"Origin": SERVED_ORIGIN})).is_success
    assert (await client.post(SESSION, json=attempt)).status_code == 201
