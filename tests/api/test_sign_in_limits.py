"""Sign-in limits: failures per login (known or not) and attempts per address, answered 429
`rate_limited` with Retry-After and no hint of whether a login exists; counted in memory or
in Redis, shared between processes. On SQLite and PostgreSQL."""

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from tests.support.clients import asgi_client, read_metrics
from tests.support.databases import REDIS_URL
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, ADMIN_TOKEN
from tests.support.people import PASSWORD, add_person
from tests.support.servers import running_app
from tests.support.sessions import SESSION

PER_LOGIN = 3
PER_ADDRESS = 5
WINDOW_SECONDS = 15 * 60
WRONG = "not the password at all"


def limited(database_url: str, **more: object) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,  # the public limits: these are on whatever they say
        sign_in_limit_per_login=f"{PER_LOGIN}/15 minutes",
        sign_in_limit_per_address=f"{PER_ADDRESS}/15 minutes",
        **more,
    )


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(limited(database_url)) as app:
        yield app


async def attempt(
    app: FastAPI, login: str, password: str, address: str = "192.0.2.10"
) -> httpx.Response:
    async with asgi_client(app, address) as browser:
        return await browser.post(SESSION, json={"login": login, "password": password})


def assert_limited(response: httpx.Response) -> str:
    """A 429 with Retry-After within the window; its message, with the number taken out."""
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW_SECONDS
    assert "set-cookie" not in response.headers
    return re.sub(r"\d+", "N", response.json()["error"]["message"])


async def audit_count(app: FastAPI) -> int:
    async with asgi_client(app) as admin:
        records = (await admin.get("/api/v1/audit?limit=500", headers=ADMIN)).json()["items"]
    return len(records)


async def test_a_login_that_failed_too_often_is_refused_even_with_the_right_password(
    app: FastAPI,
) -> None:
    cora = await add_person(app, "Cora Lind")
    # From a new address each time: it is the login that is counted.
    for n in range(PER_LOGIN):
        assert_error(await attempt(app, cora.login, WRONG, f"192.0.2.{n}"), 401, "sign_in_failed")
    before = await audit_count(app)

    refused = await attempt(app, cora.login, PASSWORD, "192.0.2.99")

    assert_limited(refused)
    assert await audit_count(app) == before  # refused before the password was looked at
    # Whatever the case it is typed in.
    assert_limited(await attempt(app, cora.login.upper(), PASSWORD, "192.0.2.98"))
    # Others sign in meanwhile.
    dora = await add_person(app, "Dora Holt")
    assert (await attempt(app, dora.login, PASSWORD, "192.0.2.97")).status_code == 201

    async with asgi_client(app) as scraper:
        samples = await read_metrics(scraper)
    refusals = "bulletin_sign_in_refusals_total"
    assert samples[f'{refusals}{{reason="wrong_password"}}'] == PER_LOGIN
    assert samples[f'{refusals}{{reason="locked_out"}}'] == 2


async def test_an_unknown_login_is_limited_exactly_as_a_known_one(app: FastAPI) -> None:
    cora = await add_person(app, "Cora Lind")
    answers = {}
    for login in (cora.login, "nobody@news.test"):
        for n in range(PER_LOGIN):
            assert_error(await attempt(app, login, WRONG, f"198.51.100.{n}"), 401, "sign_in_failed")
        answers[login] = await attempt(app, login, WRONG, "198.51.100.50")

    known, unknown = answers[cora.login], answers["nobody@news.test"]
    assert assert_limited(known) == assert_limited(unknown)
    assert sorted(known.headers) == sorted(unknown.headers)


async def test_an_address_is_limited_whatever_logins_it_tries(app: FastAPI) -> None:
    cora = await add_person(app, "Cora Lind")
    address = "203.0.113.7"
    for n in range(PER_ADDRESS):
        login = cora.login if n == 0 else f"guess{n}@news.test"
        assert_error(await attempt(app, login, WRONG, address), 401, "sign_in_failed")

    # Past the address's limit even a login it never tried, with its right password.
    assert_limited(await attempt(app, cora.login, PASSWORD, address))
    # Another address signs the same login in.
    assert (await attempt(app, cora.login, PASSWORD, "203.0.113.8")).status_code == 201


async def test_a_sign_in_forgets_the_logins_earlier_failures(app: FastAPI) -> None:
    cora = await add_person(app, "Cora Lind")
    for round_ in range(2):
        for n in range(PER_LOGIN - 1):
            address = f"192.0.2.{10 * round_ + n}"
            assert_error(await attempt(app, cora.login, WRONG, address), 401, "sign_in_failed")
        signed_in = await attempt(app, cora.login, PASSWORD, f"192.0.2.{10 * round_ + 9}")
        assert signed_in.status_code == 201, signed_in.text


async def test_counts_in_redis_are_shared_between_processes(database_url: str) -> None:
    shared = {
        "rate_limit_storage_url": REDIS_URL,
        "rate_limit_key_prefix": f"bulletin-test-{uuid.uuid4().hex}",
    }
    async with (
        running_app(limited(database_url, **shared)) as first,
        running_app(limited(database_url, **shared)) as second,
    ):
        cora = await add_person(first, "Cora Lind")
        for n in range(PER_LOGIN):
            process = first if n % 2 else second
            response = await attempt(process, cora.login, WRONG, f"192.0.2.{n}")
            assert_error(response, 401, "sign_in_failed")

        assert_limited(await attempt(first, cora.login, PASSWORD, "192.0.2.80"))
        assert_limited(await attempt(second, cora.login, PASSWORD, "192.0.2.81"))
