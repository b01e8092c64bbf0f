"""Users, managed by admins: unique logins whatever their case, passwords hashed with
Argon2id and never shown or logged, and disabled users whose tokens stop working."""

import logging

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import select

from app.models import User
from tests.support.databases import stored_rows
from tests.support.errors import UNCHECKED, assert_error
from tests.support.factories import ADMIN, publish_entry
from tests.support.people import add_person

USERS = "/api/v1/users"
PASSWORD = "a long passphrase for Sam"


async def create_user(client: httpx.AsyncClient, **fields) -> httpx.Response:
    body = {"name": "Sam Vale", "login": "Sam.Vale@News.test", "password": PASSWORD} | fields
    return await client.post(USERS, json=body, headers=ADMIN)


async def stored_user(app: FastAPI, user_id: int) -> User:
    async with app.state.services.database.read_session() as session:
        user = await session.scalar(select(User).where(User.id == user_id))
    assert user is not None
    return user


async def test_an_admin_creates_a_user_whose_password_is_stored_as_an_argon2id_hash(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger at INFO (as Bulletin runs), Bulletin's own at DEBUG too. (A database
    # driver's DEBUG log, off unless asked for, shows every statement's parameters.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bulletin")
    response = await create_user(client)
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {
        "id", "name", "login", "admin", "disabled", "disabled_at", "created_at", "updated_at"
    }  # fmt: skip
    assert (user["name"], user["login"], user["admin"], user["disabled"]) == (
        "Sam Vale", "Sam.Vale@News.test", False, False,
    )  # fmt: skip
    stored = await stored_user(app, user["id"])
    assert stored.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(stored.password_hash, PASSWORD)
    listed = (await client.get(USERS, headers=ADMIN)).text
    read = (await client.get(f"{USERS}/{user['id']}", headers=ADMIN)).json()
    assert read == user
    for shown in (response.text, listed, caplog.text):
        assert PASSWORD not in shown and stored.password_hash not in shown
        assert "argon2" not in shown


@pytest.mark.parametrize("login", ["sam.vale@news.test", "SAM.VALE@NEWS.TEST"])
async def test_a_login_is_unique_whatever_its_case(
    app: FastAPI, client: httpx.AsyncClient, login: str
) -> None:
    assert (await create_user(client)).status_code == 201
    before = await stored_rows(app.state.services.database)
    assert_error(await create_user(client, login=login, name="Another"), 409, "login_taken")
    assert await stored_rows(app.state.services.database) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"password": "too short"}, "password"),
        ({"password": "x" * 1001}, "password"),
        ({"login": "not an email"}, "login"),
        ({"login": "sam@"}, "login"),
        ({"name": "  "}, "name"),
        ({"admin": "yes"}, "admin"),
        ({"role": "editor"}, "role"),
    ],
    ids=["short", "long", "spaces", "no-domain", "blank-name", "admin-not-boolean", "unknown"],
)
async def test_an_invalid_user_is_422_naming_the_field_and_nothing_is_stored(
    app: FastAPI, client: httpx.AsyncClient, fields: dict, field: str
) -> None:
    before = await stored_rows(app.state.services.database)
    response = await create_user(client, **fields)
    assert field in assert_error(response, 422, "invalid_input", UNCHECKED)["fields"]
    assert await stored_rows(app.state.services.database) == before
    if "password" in fields:
        assert fields["password"] not in response.text


async def test_only_admins_manage_users(
    app: FastAPI, client: httpx.AsyncClient, publish_headers: dict[str, str], blog: dict
) -> None:
    owner = await add_person(app, "Olu Bello", role="owner")
    body = {"name": "Sam Vale", "login": "sam@news.test", "password": PASSWORD}
    for headers in (publish_headers, owner.headers):
        assert_error(await client.post(USERS, json=body, headers=headers), 403, "forbidden")
        assert_error(await client.get(USERS, headers=headers), 403, "forbidden")
        patched = await client.patch(
            f"{USERS}/{owner.user_id}", json={"admin": True}, headers=headers
        )
        assert_error(patched, 403, "forbidden")
    assert_error(await client.get(USERS), 401, "unauthorised")
    assert not (await stored_user(app, owner.user_id)).admin


async def test_a_disabled_users_tokens_stop_working_until_it_is_enabled_again(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    eddie = await add_person(app, "Eddie Grant", role="editor")
    await publish_entry(client, headers=eddie.headers, headline="Before")
    disabled = await client.patch(
        f"{USERS}/{eddie.user_id}", json={"disabled": True}, headers=ADMIN
    )
    assert disabled.json()["disabled"] is True and disabled.json()["disabled_at"] is not None
    refused = await client.post(
        "/api/v1/blogs/vote-night/entries", json={"headline": "After"}, headers=eddie.headers
    )
    assert_error(refused, 401, "unauthorised")
    assert_error(await client.get("/api/v1/me", headers=eddie.headers), 401, "unauthorised")

    enabled = await client.patch(
        f"{USERS}/{eddie.user_id}", json={"disabled": False}, headers=ADMIN
    )
    assert enabled.json()["disabled_at"] is None
    await publish_entry(client, headers=eddie.headers, headline="Back")


async def test_an_admin_renames_a_user_changes_its_password_and_makes_it_an_admin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = (await create_user(client)).json()
    before = await stored_user(app, user["id"])
    response = await client.patch(
        f"{USERS}/{user['id']}",
        json={"name": "Samira Vale", "password": "another long passphrase", "admin": True},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["admin"]) == ("Samira Vale", True)
    after = await stored_user(app, user["id"])
    assert PasswordHasher().verify(after.password_hash, "another long passphrase")
    assert after.password_changed_at > before.password_changed_at


async def test_changing_an_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch(f"{USERS}/4242", json={"name": "Nobody"}, headers=ADMIN)
    assert_error(response, 404, "not_found")


async def test_the_last_admin_cannot_be_disabled_or_demoted_until_another_exists(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Nobody could manage the installation afterwards (only the command line could)."""
    ada = await add_person(app, "Ada Admin", admin=True)
    tokens = (await client.get("/api/v1/tokens", headers=ADMIN)).json()
    [environment] = [t for t in tokens if t["scope"] == "admin"]
    revoked = await client.delete(f"/api/v1/tokens/{environment['id']}", headers=ada.headers)
    assert revoked.status_code == 200, revoked.text
    before = await stored_rows(app.state.services.database)
    for change in ({"disabled": True}, {"admin": False}, {"admin": False, "name": "Ada"}):
        refused = await client.patch(f"{USERS}/{ada.user_id}", json=change, headers=ada.headers)
        assert "another admin" in assert_error(refused, 409, "last_admin")["message"]
    assert await stored_rows(app.state.services.database) == before

    # A second admin user, even one without a token (it signs in), lifts the rule.
    created = await client.post(
        USERS,
        json={"name": "Bo Admin", "login": "bo@news.test", "password": PASSWORD, "admin": True},
        headers=ada.headers,
    )
    assert created.status_code == 201, created.text
    demoted = await client.patch(
        f"{USERS}/{ada.user_id}", json={"admin": False}, headers=ada.headers
    )
    assert demoted.status_code == 200 and demoted.json()["admin"] is False
    # Bo is now the last one: Ada's token no longer acts as an admin.
    assert_error(
        await client.patch(
            f"{USERS}/{created.json()['id']}", json={"disabled": True}, headers=ada.headers
        ),
        403,
        "forbidden",
    )
