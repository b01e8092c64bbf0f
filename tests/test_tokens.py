"""BULLETIN_ADMIN_TOKEN, the admin token a person chooses (security review L4, reliability
review defect 6): held to the rule of every set secret, never stored or listed in plain
text (not even its first characters), stored with a slow salted hash, revoked for good
(and said so in the log), and never the last admin token to go."""

import hashlib
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pydantic
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from app.config import Settings
from app.main import create_app
from app.models import Token, utc_now
from app.tokens import TOKEN_PREFIX

# Chosen by a person: long enough, varied enough, and not a generated `bltn_` token.
CHOSEN = "Zq8xK2p-harbour-desk-admin-2026"
TOKENS = "/api/v1/tokens"
AUTH = {"Authorization": f"Bearer {CHOSEN}"}


@asynccontextmanager
async def running(
    database_url: str, admin_token: str | None = CHOSEN, **changes: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    fields = {"rate_limit_enabled": False, **changes}
    settings = Settings(database_url=database_url, admin_token=admin_token, **fields)  # type: ignore[arg-type]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bulletin.test") as c:
            yield app, c


async def stored_tokens(app: FastAPI) -> list[Token]:
    async with app.state.services.database.read_session() as session:
        return list(await session.scalars(select(Token).order_by(Token.id)))


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(database_url) as started:
        yield started


def environment_token(listed: list[dict]) -> dict:
    [token] = [t for t in listed if t["name"] == "admin (BULLETIN_ADMIN_TOKEN)"]
    return token


async def test_no_character_of_the_environment_token_is_listed_or_stored(
    desk: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = desk
    listed = (await client.get(TOKENS, headers=AUTH)).json()
    assert environment_token(listed)["prefix"] == ""
    [row] = await stored_tokens(app)
    assert row.prefix == ""
    # Not its plain SHA-256 either: a copy of the database is no shortcut to guessing it.
    assert row.secret_hash != hashlib.sha256(CHOSEN.encode()).hexdigest()
    assert CHOSEN[:4] not in row.prefix + row.secret_hash + row.name


async def test_generated_tokens_still_list_their_marker_and_six_characters(
    desk: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, client = desk
    created = (
        await client.post(TOKENS, json={"name": "wire", "scope": "publish"}, headers=AUTH)
    ).json()
    assert created["prefix"] == created["secret"][: len(TOKEN_PREFIX) + 6]
    assert created["prefix"].startswith(TOKEN_PREFIX)


async def test_the_stored_hash_is_salted_per_installation(
    database_url: str, sqlite_template: Path, tmp_path: Path
) -> None:
    other = tmp_path / "another-installation.db"
    shutil.copy(sqlite_template, other)
    hashes = []
    for url in (database_url, f"sqlite+aiosqlite:///{other}"):
        async with running(url) as (app, client):
            assert (await client.get(TOKENS, headers=AUTH)).status_code == 200
            [row] = await stored_tokens(app)
            hashes.append(row.secret_hash)
    assert hashes[0] != hashes[1]


@pytest.mark.parametrize(
    "weak",
    [
        "a" * 40,  # long, but one character
        "ab" * 20,  # long, but two
        "admin" * 8,  # long, but five
    ],
)
def test_long_runs_of_a_few_characters_are_refused_like_weak_secret_keys(weak: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="BULLETIN_ADMIN_TOKEN must be a random"):
        Settings(admin_token=weak)
    with pytest.raises(pydantic.ValidationError, match="BULLETIN_SECRET_KEY must be a random"):
        Settings(secret_key=weak)


def test_one_rule_for_both_secrets_says_what_a_good_one_is() -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(admin_token="x" * 30)
    assert "at least 24 characters (at least 8 of them different)" in str(refused.value)
    assert Settings(admin_token=CHOSEN).admin_token is not None
    assert Settings(secret_key=CHOSEN + "-and-more").secret_key is not None


async def test_the_last_live_admin_token_cannot_be_revoked(
    desk: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = desk
    env_id = environment_token((await client.get(TOKENS, headers=AUTH)).json())["id"]
    refused = await client.delete(f"{TOKENS}/{env_id}", headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "last_admin_token"
    assert "create another admin token first" in refused.json()["error"]["message"]
    assert (await client.get(TOKENS, headers=AUTH)).status_code == 200  # still works
    # A publish token does not count; another admin token does.
    await client.post(TOKENS, json={"name": "wire", "scope": "publish"}, headers=AUTH)
    assert (await client.delete(f"{TOKENS}/{env_id}", headers=AUTH)).status_code == 409
    other = (
        await client.post(TOKENS, json={"name": "chief", "scope": "admin"}, headers=AUTH)
    ).json()
    assert (await client.delete(f"{TOKENS}/{env_id}", headers=AUTH)).status_code == 200
    chief = {"Authorization": f"Bearer {other['secret']}"}
    assert (await client.delete(f"{TOKENS}/{other['id']}", headers=chief)).status_code == 409
    assert len([t for t in await stored_tokens(app) if t.revoked_at is None]) == 2


async def test_a_revoked_environment_token_stays_revoked_after_a_restart_and_says_so(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bulletin.tokens")
    async with running(database_url) as (_app, client):
        env_id = environment_token((await client.get(TOKENS, headers=AUTH)).json())["id"]
        other = (
            await client.post(TOKENS, json={"name": "chief", "scope": "admin"}, headers=AUTH)
        ).json()
        assert (await client.delete(f"{TOKENS}/{env_id}", headers=AUTH)).status_code == 200
    revoked_line = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [
        f"token {env_id} (BULLETIN_ADMIN_TOKEN) was revoked" in r.getMessage() for r in revoked_line
    ] == [True]
    caplog.clear()

    async with running(database_url) as (app, client):
        assert (await client.get(TOKENS, headers=AUTH)).status_code == 401
        chief = {"Authorization": f"Bearer {other['secret']}"}
        listed = (await client.get(TOKENS, headers=chief)).json()
        assert environment_token(listed)["revoked_at"] is not None
        assert len(await stored_tokens(app)) == 2  # nothing new was made from the old value
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"BULLETIN_ADMIN_TOKEN is token {env_id}" in warning.getMessage()
    assert "it stays revoked" in warning.getMessage()
    caplog.clear()

    # A new value makes a new admin token.
    fresh = "Kp3-a-brand-new-admin-token-for-the-desk"
    async with running(database_url, admin_token=fresh) as (_app, client):
        ok = await client.get(TOKENS, headers={"Authorization": f"Bearer {fresh}"})
        assert ok.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # No secret ever reaches the log.
    assert CHOSEN not in caplog.text and fresh not in caplog.text


async def test_a_token_stored_by_an_earlier_version_loses_its_plain_prefix_and_keeps_working(
    database_url: str,
) -> None:
    async with (
        running(database_url, admin_token=None) as (app, _client),
        app.state.services.database.write_session() as session,
    ):
        # As versions before this one stored it: its SHA-256 and its first 11 characters.
        await session.execute(
            insert(Token).values(
                name="admin (BULLETIN_ADMIN_TOKEN)",
                scope="admin",
                secret_hash=hashlib.sha256(CHOSEN.encode()).hexdigest(),
                prefix=CHOSEN[:11],
                from_environment=True,
                created_at=utc_now(),
            )
        )
    async with running(database_url) as (app, client):
        assert (await client.get(TOKENS, headers=AUTH)).status_code == 200
        [row] = await stored_tokens(app)
    assert row.prefix == ""
    assert row.secret_hash != hashlib.sha256(CHOSEN.encode()).hexdigest()


async def test_the_environment_token_is_exempt_from_the_rate_limits(database_url: str) -> None:
    async with running(database_url, rate_limit_enabled=True, rate_limit_reads="2/minute") as (
        _app,
        client,
    ):
        answers = [await client.get("/api/v1/blogs", headers=AUTH) for _ in range(5)]
        assert {a.status_code for a in answers} == {200}
        public = [(await client.get("/api/v1/blogs")).status_code for _ in range(3)]
        assert public == [200, 200, 429]


async def test_a_generated_secret_given_as_the_environment_token_is_that_token(
    database_url: str,
) -> None:
    async with running(database_url) as (app, _client):
        token, secret = await app.state.services.tokens.create("chief", "admin")
    async with running(database_url, admin_token=secret) as (app, client):
        listed = await client.get(TOKENS, headers={"Authorization": f"Bearer {secret}"})
        assert listed.status_code == 200
        rows = await stored_tokens(app)
    # The first environment token was retired by the new value; no row was added for it.
    assert [(t.id, t.from_environment) for t in rows] == [(1, True), (token.id, False)]
    assert rows[0].revoked_at is not None
