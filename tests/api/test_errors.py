"""Every refusal the API makes, on both databases.

Each test checks the exact status, the one error shape
`{"error": {"code", "message", "fields"?}}`, and that a refused request wrote
nothing: every table's rows read the same before and after (one SELECT a table). One
refusal of each kind is also read back through the API: every blog (with its
`head_seq`), its entries, drafts, change log and the token list read the same.

The newsroom the requests act in is made once per database, through the API, and each
test gets a copy of it: of the file on SQLite; on PostgreSQL, the tables refilled from a
saved copy of their rows.
"""

import asyncio
import base64
import dataclasses
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Integer

from app.config import Settings
from app.db import Database
from app.models import Base
from tests.support.clients import asgi_client
from tests.support.databases import TABLES, empty_postgres, execute, stored_rows
from tests.support.errors import UNCHECKED, assert_error
from tests.support.factories import (
    ADMIN,
    ADMIN_TOKEN,
    create_blog,
    created,
    publish_entry,
    read_log,
)
from tests.support.servers import running_app

# Small, so oversized bodies are cheap to send; every valid request here is far below it.
MAX_BODY_BYTES = 2048
# Where the PostgreSQL newsroom's rows are kept between tests: not a schema the app reads.
SAVED = "newsroom_template"


def errors_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, admin_token=ADMIN_TOKEN, max_body_bytes=MAX_BODY_BYTES
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return errors_settings(database_url)


@dataclasses.dataclass(frozen=True)
class Call:
    """One request; `{entry}`-style placeholders in the path name things the newsroom made."""

    method: str
    path: str
    auth: str = "publish"
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    chunked: bool = False

    def but(self, **changes: Any) -> "Call":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class NewsroomTemplate:
    """A database holding the desk, and what a test needs to act in a copy of it."""

    kind: str
    url: str
    ids: dict[str, int]
    auth: dict[str, dict[str, str]]


@dataclasses.dataclass(frozen=True)
class Desk:
    """What a test acts with: the ids of what the newsroom made, its credentials, and the
    database of this test's copy, to read back."""

    ids: dict[str, int]
    auth: dict[str, dict[str, str]]
    database: Database


async def make_newsroom(url: str) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """Two blogs with an entry each, a live token and a revoked one; their ids and the
    credentials the tests use."""
    async with running_app(errors_settings(url)) as app, asgi_client(app) as client:
        await create_blog(client, timezone="America/New_York")
        _token, secret = await app.state.services.tokens.create("desk", "publish")
        publish = {"Authorization": f"Bearer {secret}"}
        entry = await publish_entry(client, headers=publish, headline="Polls open")
        await create_blog(client, "recount", "Recount")
        other = await publish_entry(client, "recount", headline="Recount")
        token = {"name": "wire", "scope": "publish"}
        wire = created(await client.post("/api/v1/tokens", json=token, headers=ADMIN))
        token = {"name": "old", "scope": "admin"}
        old = created(await client.post("/api/v1/tokens", json=token, headers=ADMIN))
        revoked = await client.delete(f"/api/v1/tokens/{old['id']}", headers=ADMIN)
        assert revoked.status_code == 200, revoked.text
    ids = {"entry": entry["id"], "other_entry": other["id"], "token": wire["id"]}
    auth = {
        "admin": ADMIN,
        "publish": publish,
        "none": {},
        "unknown": {"Authorization": "Bearer bltn_not-a-token-anyone-was-given"},
        "revoked": {"Authorization": f"Bearer {old['secret']}"},
        "basic": {"Authorization": "Basic ZGVzazpwYXNzd29yZA=="},
        "empty-bearer": {"Authorization": "Bearer "},
    }
    return ids, auth


# Tables whose `id` is a sequence (the installation's is a random string).
SERIAL_IDS = {
    table.name
    for table in Base.metadata.sorted_tables
    if "id" in table.c and isinstance(table.c.id.type, Integer)
}


def _restore_statement() -> str:
    """Empty the tables, refill them from the saved rows, and set each id sequence
    where the newsroom left it."""
    parents_first = list(reversed(TABLES))
    statements = [f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"]
    statements += [f"INSERT INTO {table} SELECT * FROM {SAVED}.{table}" for table in parents_first]
    statements += [
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} "
        "HAVING max(id) IS NOT NULL"
        for table in parents_first
        if table in SERIAL_IDS
    ]
    return "; ".join(statements)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def newsroom_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NewsroomTemplate]:
    """The desk, made once per database for this module."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("newsroom") / "bulletin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
        ids, auth = asyncio.run(make_newsroom(url))
        # Everything in the one file, so a copy of it is the whole database.
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield NewsroomTemplate("sqlite", str(path), ids, auth)
        return
    url = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    ids, auth = asyncio.run(make_newsroom(url))
    saved = [f"CREATE TABLE {SAVED}.{table} AS TABLE {table}" for table in TABLES]
    asyncio.run(execute(url, "; ".join([f"CREATE SCHEMA {SAVED}", *saved])))
    try:
        yield NewsroomTemplate("postgresql", url, ids, auth)
    finally:
        asyncio.run(execute(url, f"DROP SCHEMA {SAVED} CASCADE"))


@pytest.fixture
def database_url(newsroom_template: NewsroomTemplate, tmp_path: Path) -> str:
    """A copy of the newsroom for this test."""
    if newsroom_template.kind == "sqlite":
        path = tmp_path / "bulletin.db"
        shutil.copy(newsroom_template.url, path)
        return f"sqlite+aiosqlite:///{path}"
    asyncio.run(execute(newsroom_template.url, _restore_statement()))
    return newsroom_template.url


@pytest.fixture
def desk(app: FastAPI, newsroom_template: NewsroomTemplate) -> Desk:
    return Desk(newsroom_template.ids, newsroom_template.auth, app.state.services.database)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    # An async iterator makes httpx stream the body with no Content-Length.
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


async def send(client: httpx.AsyncClient, desk: Desk, call: Call) -> httpx.Response:
    headers = {**desk.auth[call.auth], **call.headers}
    content: Any = call.content
    if call.chunked:
        assert content is not None
        content = _chunks(content)
        headers.setdefault("Content-Type", "application/json")
    return await client.request(
        call.method,
        call.path.format(**desk.ids),
        json=call.json,
        content=content,
        headers=headers,
    )


async def visible_state(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a refused request must leave as it was, read through the API."""
    listed = await client.get("/api/v1/blogs", params={"limit": 100})
    state: dict[str, Any] = {
        "blogs": listed.json(),
        "tokens": (await client.get("/api/v1/tokens", headers=ADMIN)).json(),
    }
    for slug in [blog["slug"] for blog in listed.json()["items"]]:
        entries = f"/api/v1/blogs/{slug}/entries"
        state[slug] = {
            "blog": (await client.get(f"/api/v1/blogs/{slug}")).json(),
            "entries": (await client.get(entries, params={"limit": 100})).json(),
            "drafts": (
                await client.get(entries, params={"limit": 100, "status": "draft"}, headers=ADMIN)
            ).json(),
            "events": await read_log(client, slug),
        }
    return state


async def refused(
    client: httpx.AsyncClient,
    desk: Desk,
    call: Call,
    status: int,
    code: str,
    fields: Any = None,
    *,
    through_the_api: bool = False,
) -> httpx.Response:
    """Send `call`, check it is refused as expected, and that nothing was stored (and, if
    asked, that nothing the API shows changed)."""
    shown = await visible_state(client) if through_the_api else None
    stored = await stored_rows(desk.database)
    response = await send(client, desk, call)
    assert_error(response, status, code, fields)
    assert await stored_rows(desk.database) == stored
    if through_the_api:
        assert await visible_state(client) == shown
    return response


CREATE_BLOG = Call("POST", "/api/v1/blogs", "admin", json={"slug": "count", "title": "Count"})
UPDATE_BLOG = Call("PATCH", "/api/v1/blogs/vote-night", "admin", json={"title": "Renamed"})
CREATE_ENTRY = Call("POST", "/api/v1/blogs/vote-night/entries", json={"headline": "Exit poll"})
UPDATE_ENTRY = Call("PATCH", "/api/v1/blogs/vote-night/entries/{entry}", json={"headline": "Ed"})
DELETE_ENTRY = Call("DELETE", "/api/v1/blogs/vote-night/entries/{entry}")
CREATE_TOKEN = Call("POST", "/api/v1/tokens", "admin", json={"name": "intern", "scope": "admin"})
LIST_TOKENS = Call("GET", "/api/v1/tokens", "admin")
REVOKE_TOKEN = Call("DELETE", "/api/v1/tokens/{token}", "admin")
READ_DRAFTS = Call("GET", "/api/v1/blogs/vote-night/entries?status=draft", "none")

JSON_WRITES = {
    "create-blog": CREATE_BLOG,
    "update-blog": UPDATE_BLOG,
    "create-entry": CREATE_ENTRY,
    "update-entry": UPDATE_ENTRY,
    "create-token": CREATE_TOKEN,
}
NEEDS_A_TOKEN = {
    **JSON_WRITES,
    "delete-entry": DELETE_ENTRY,
    "list-tokens": LIST_TOKENS,
    "revoke-token": REVOKE_TOKEN,
    "read-drafts": READ_DRAFTS,
}
ADMIN_ONLY = {
    "create-blog": CREATE_BLOG,
    "update-blog": UPDATE_BLOG,
    "create-token": CREATE_TOKEN,
    "list-tokens": LIST_TOKENS,
    "revoke-token": REVOKE_TOKEN,
}


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def json_of_size(size: int) -> bytes:
    """A valid new entry whose JSON is exactly `size` bytes."""
    padding = size - len(json.dumps({"headline": "Big", "body": ""}).encode())
    body = json.dumps({"headline": "Big", "body": "a" * padding}).encode()
    assert len(body) == size
    return body


# --- 400 ----------------------------------------------------------------------


@pytest.mark.parametrize("target", list(JSON_WRITES.values()), ids=list(JSON_WRITES))
@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"headline": "x",}', b'{"headline": "x"} {}', b"\xff\xfe{}"],
    ids=["unclosed", "trailing-comma", "two-documents", "not-utf8"],
)
async def test_malformed_json_is_refused_with_400_malformed_json(
    client: httpx.AsyncClient, desk: Desk, target: Call, raw: bytes
) -> None:
    call = target.but(json=None, content=raw, headers={"Content-Type": "application/json"})
    await refused(client, desk, call, 400, "malformed_json")


ENTRIES_PAGE = "/api/v1/blogs/vote-night/entries?before="
BLOGS_PAGE = "/api/v1/blogs?before="


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(ENTRIES_PAGE + "not-a-cursor!", id="entries-garbage"),
        pytest.param(ENTRIES_PAGE + cursor("yesterday|1"), id="entries-not-a-time"),
        pytest.param(ENTRIES_PAGE + cursor("2024-11-05T20:00:00|1"), id="entries-naive-time"),
        pytest.param(ENTRIES_PAGE + cursor("2024-11-05T20:00:00+00:00|one"), id="entries-bad-id"),
        pytest.param(ENTRIES_PAGE + cursor("2024-11-05T20:00:00+00:00"), id="entries-no-id"),
        pytest.param(ENTRIES_PAGE + "%C3%BF%C3%BE", id="entries-non-ascii"),
        pytest.param(
            ENTRIES_PAGE + cursor("2024-11-05T20:00:00+00:00|" + "9" * 30), id="entries-huge-id"
        ),
        pytest.param(BLOGS_PAGE + "%%%", id="blogs-garbage"),
        pytest.param(BLOGS_PAGE + cursor("the-first"), id="blogs-not-a-number"),
        pytest.param(BLOGS_PAGE + cursor("9" * 30), id="blogs-huge-id"),
    ],
)
async def test_a_cursor_the_server_did_not_give_out_is_400_invalid_cursor(
    client: httpx.AsyncClient, desk: Desk, path: str
) -> None:
    await refused(client, desk, Call("GET", path, "none"), 400, "invalid_cursor")


@pytest.mark.parametrize(
    "key", ["x" * 300, "x" * 256, "two words", ""], ids=["300-chars", "256-chars", "space", "empty"]
)
async def test_an_invalid_idempotency_key_is_400_and_creates_nothing(
    client: httpx.AsyncClient, desk: Desk, key: str
) -> None:
    call = CREATE_ENTRY.but(headers={"Idempotency-Key": key})
    await refused(client, desk, call, 400, "invalid_idempotency_key")


# --- 401 and 403 ----------------------------------------------------------------


MISSING_UNKNOWN_OR_REVOKED = [
    pytest.param(target, auth, id=f"{auth}-{name}")
    for name, target in NEEDS_A_TOKEN.items()
    for auth in ("none", "unknown", "revoked")
] + [
    pytest.param(CREATE_ENTRY, auth, id=f"{auth}-create-entry")
    for auth in ("basic", "empty-bearer")
]


@pytest.mark.parametrize(("target", "auth"), MISSING_UNKNOWN_OR_REVOKED)
async def test_a_missing_unknown_or_revoked_token_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, desk: Desk, target: Call, auth: str
) -> None:
    response = await refused(client, desk, target.but(auth=auth), 401, "unauthorised")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("target", list(ADMIN_ONLY.values()), ids=list(ADMIN_ONLY))
async def test_a_publish_token_cannot_do_admin_work(
    client: httpx.AsyncClient, desk: Desk, target: Call
) -> None:
    response = await refused(client, desk, target.but(auth="publish"), 403, "forbidden")
    assert "WWW-Authenticate" not in response.headers


# --- 404 and 405 ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        Call("GET", "/api/v1/blogs/no-such-blog", "none"),
        Call("GET", "/api/v1/blogs/no-such-blog/entries", "none"),
        Call("GET", "/api/v1/blogs/no-such-blog/entries/{entry}", "none"),
        Call("GET", "/api/v1/blogs/no-such-blog/events", "none"),
        Call("PATCH", "/api/v1/blogs/no-such-blog", "admin", json={"title": "New"}),
        Call("POST", "/api/v1/blogs/no-such-blog/entries", json={"headline": "Lost"}),
        Call("PATCH", "/api/v1/blogs/no-such-blog/entries/{entry}", json={"headline": "Lost"}),
        Call("DELETE", "/api/v1/blogs/no-such-blog/entries/{entry}"),
        Call("GET", "/api/v1/blogs/VOTE-NIGHT", "none"),
        Call("GET", "/api/v1/blogs/vote%00night", "none"),
    ],
    ids=lambda call: f"{call.method}-{call.path}",
)
async def test_an_unknown_blog_is_404_not_found(
    client: httpx.AsyncClient, desk: Desk, call: Call
) -> None:
    await refused(client, desk, call, 404, "not_found")


UNKNOWN_ENTRY_IDS = {
    "never-existed": "{entry}000",
    "in-another-blog": "{other_entry}",
    "past-int32": str(2**31),
    "past-int64": "9" * 30,
}


@pytest.mark.parametrize("entry_id", list(UNKNOWN_ENTRY_IDS.values()), ids=list(UNKNOWN_ENTRY_IDS))
@pytest.mark.parametrize(
    "call",
    [
        Call("GET", "/api/v1/blogs/vote-night/entries/ID", "publish"),
        Call("PATCH", "/api/v1/blogs/vote-night/entries/ID", json={"headline": "Edited"}),
        Call("DELETE", "/api/v1/blogs/vote-night/entries/ID"),
    ],
    ids=["read", "update", "delete"],
)
async def test_an_unknown_entry_is_404_not_found(
    client: httpx.AsyncClient, desk: Desk, call: Call, entry_id: str
) -> None:
    call = call.but(path=call.path.replace("ID", entry_id))
    await refused(client, desk, call, 404, "not_found")


async def test_revoking_an_unknown_token_is_404_not_found(
    client: httpx.AsyncClient, desk: Desk
) -> None:
    call = REVOKE_TOKEN.but(path="/api/v1/tokens/{token}000")
    await refused(client, desk, call, 404, "not_found", through_the_api=True)


@pytest.mark.parametrize(
    "call",
    [
        Call("GET", "/api/v1/nowhere", "none"),
        Call("POST", "/api/v1/nowhere", json={"headline": "x"}),
        Call("GET", "/api/v2/blogs", "none"),
        Call("GET", "/api/v1/blogs/vote-night/comments", "none"),
        Call("GET", "/nowhere", "none"),
    ],
    ids=lambda call: f"{call.method}-{call.path}",
)
async def test_an_unknown_route_is_404_in_the_error_shape(
    client: httpx.AsyncClient, desk: Desk, call: Call
) -> None:
    await refused(client, desk, call, 404, "not_found")


@pytest.mark.parametrize(
    "call",
    [
        Call("DELETE", "/api/v1/blogs", "admin"),
        Call("PUT", "/api/v1/blogs/vote-night", "admin", json={"title": "Replaced"}),
        Call("DELETE", "/api/v1/blogs/vote-night", "admin"),
        Call("POST", "/api/v1/blogs/vote-night/events", json={"type": "blog.ended"}),
        Call("PUT", "/api/v1/blogs/vote-night/entries/{entry}", json={"headline": "Put"}),
    ],
    ids=lambda call: f"{call.method}-{call.path}",
)
async def test_a_wrong_method_is_405_in_the_error_shape_with_allow(
    client: httpx.AsyncClient, desk: Desk, call: Call
) -> None:
    response = await refused(client, desk, call, 405, "method_not_allowed")
    assert call.method not in response.headers["Allow"]


# --- 409 ------------------------------------------------------------------------


async def test_a_duplicate_slug_is_409_conflict_and_keeps_the_first_blog(
    client: httpx.AsyncClient, desk: Desk
) -> None:
    call = CREATE_BLOG.but(json={"slug": "vote-night", "title": "Impostor", "summary": "<p>x</p>"})
    await refused(client, desk, call, 409, "conflict", through_the_api=True)
    assert (await client.get("/api/v1/blogs/vote-night")).json()["title"] == "Vote night"


@pytest.mark.parametrize("ahead", [1, 1000])
async def test_since_ahead_of_the_head_is_409_since_ahead_of_head(
    client: httpx.AsyncClient, desk: Desk, ahead: int
) -> None:
    head = (await client.get("/api/v1/blogs/vote-night")).json()["head_seq"]
    call = Call("GET", f"/api/v1/blogs/vote-night/events?since={head + ahead}", "none")
    await refused(client, desk, call, 409, "since_ahead_of_head")


# --- 413 and 415 -----------------------------------------------------------------

BODY_TARGETS = {"create-entry": CREATE_ENTRY, "update-entry": UPDATE_ENTRY}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("target", list(BODY_TARGETS.values()), ids=list(BODY_TARGETS))
@pytest.mark.parametrize("over", [1, 10 * MAX_BODY_BYTES])
async def test_a_body_over_the_limit_is_413_payload_too_large(
    client: httpx.AsyncClient, desk: Desk, target: Call, chunked: bool, over: int
) -> None:
    call = target.but(
        json=None,
        content=json_of_size(MAX_BODY_BYTES + over),
        headers={"Content-Type": "application/json"},
        chunked=chunked,
    )
    await refused(client, desk, call, 413, "payload_too_large")


async def test_an_oversized_body_is_refused_before_the_token_is_checked(
    client: httpx.AsyncClient, desk: Desk
) -> None:
    call = CREATE_ENTRY.but(
        auth="none",
        json=None,
        content=json_of_size(MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    await refused(client, desk, call, 413, "payload_too_large", through_the_api=True)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_of_exactly_the_limit_is_accepted(
    client: httpx.AsyncClient, desk: Desk, chunked: bool
) -> None:
    call = CREATE_ENTRY.but(
        json=None,
        content=json_of_size(MAX_BODY_BYTES),
        headers={"Content-Type": "application/json"},
        chunked=chunked,
    )
    response = await send(client, desk, call)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("target", list(JSON_WRITES.values()), ids=list(JSON_WRITES))
@pytest.mark.parametrize(
    "request_body",
    [
        {"content": b'{"headline": "x"}', "headers": {"Content-Type": "text/plain"}},
        {
            "content": b"headline=x",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        {
            "content": b'--b\r\nContent-Disposition: form-data; name="headline"\r\n\r\n'
            b"x\r\n--b--\r\n",
            "headers": {"Content-Type": "multipart/form-data; boundary=b"},
        },
        {"content": b'{"headline": "x"}', "headers": {}},
    ],
    ids=["text-plain", "form", "multipart", "no-content-type"],
)
async def test_a_body_that_is_not_json_is_415_unsupported_media_type(
    client: httpx.AsyncClient, desk: Desk, target: Call, request_body: dict
) -> None:
    call = target.but(json=None, **request_body)
    await refused(client, desk, call, 415, "unsupported_media_type")


# --- 422 ------------------------------------------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
NEW_BLOG = {"slug": "count", "title": "Count"}
IMAGE = {"kind": "image", "url": "https://example.com/a.jpg"}

INVALID_FIELDS = {
    "entry-unknown-field": (CREATE_ENTRY.but(json={"headline": "x", "colour": "red"}), {"colour"}),
    "entry-unknown-nested-field": (
        CREATE_ENTRY.but(json={"media": [{**IMAGE, "colour": "red"}]}),
        {"media.0.colour"},
    ),
    "entry-update-unknown-field": (UPDATE_ENTRY.but(json={"colour": "red"}), {"colour"}),
    "blog-unknown-field": (CREATE_BLOG.but(json={**NEW_BLOG, "colour": "red"}), {"colour"}),
    "blog-update-unknown-field": (UPDATE_BLOG.but(json={"colour": "red"}), {"colour"}),
    "token-unknown-field": (
        CREATE_TOKEN.but(json={"name": "x", "scope": "admin", "ttl": 1}),
        {"ttl"},
    ),
    "token-unknown-scope": (CREATE_TOKEN.but(json={"name": "x", "scope": "root"}), {"scope"}),
    "bad-slug-spaces": (CREATE_BLOG.but(json={**NEW_BLOG, "slug": "Vote Night!"}), {"slug"}),
    "bad-slug-leading-dash": (CREATE_BLOG.but(json={**NEW_BLOG, "slug": "-count"}), {"slug"}),
    "bad-slug-empty": (CREATE_BLOG.but(json={**NEW_BLOG, "slug": ""}), {"slug"}),
    "missing-title": (CREATE_BLOG.but(json={"slug": "count"}), {"title"}),
    "bad-time-zone": (
        CREATE_BLOG.but(json={**NEW_BLOG, "timezone": "Mars/Olympus_Mons"}),
        {"timezone"},
    ),
    "time-zone-path": (
        CREATE_BLOG.but(json={**NEW_BLOG, "timezone": "../../etc/passwd"}),
        {"timezone"},
    ),
    "update-bad-time-zone": (UPDATE_BLOG.but(json={"timezone": "Eastern"}), {"timezone"}),
    "unknown-previous-blog": (
        CREATE_BLOG.but(json={**NEW_BLOG, "previous_slug": "no-such-blog"}),
        {"previous_slug"},
    ),
    "blog-continues-itself": (
        UPDATE_BLOG.but(json={"previous_slug": "vote-night"}),
        {"previous_slug"},
    ),
    "blog-title-null": (UPDATE_BLOG.but(json={"title": None}), {"title"}),
    "media-javascript-url": (
        CREATE_ENTRY.but(json={"media": [{**IMAGE, "url": "javascript:alert(1)"}]}),
        {"media.0.url"},
    ),
    "media-ftp-url": (
        CREATE_ENTRY.but(json={"media": [{**IMAGE, "url": "ftp://example.com/a.jpg"}]}),
        {"media.0.url"},
    ),
    # A path on this server ("/static/...") is allowed; a path relative to nothing is not,
    # nor one that browsers read as another host.
    "media-relative-url": (
        CREATE_ENTRY.but(json={"media": [{**IMAGE, "url": "a.jpg"}]}),
        {"media.0.url"},
    ),
    "media-protocol-relative-url": (
        CREATE_ENTRY.but(json={"media": [{**IMAGE, "url": "//example.com/a.jpg"}]}),
        {"media.0.url"},
    ),
    "media-backslash-path": (
        CREATE_ENTRY.but(json={"media": [{**IMAGE, "url": "/\\example.com/a.jpg"}]}),
        {"media.0.url"},
    ),
    "media-data-url": (
        UPDATE_ENTRY.but(json={"media": [{**IMAGE, "url": "data:image/png;base64,AAAA"}]}),
        {"media.0.url"},
    ),
    "author-javascript-url": (
        CREATE_ENTRY.but(
            json={"headline": "x", "authors": [{"name": "A", "url": "javascript:alert(1)"}]}
        ),
        {"authors.0.url"},
    ),
    "published-in-the-future": (
        CREATE_ENTRY.but(json={"headline": "x", "published_at": FUTURE}),
        {"published_at"},
    ),
    "moved-into-the-future": (UPDATE_ENTRY.but(json={"published_at": FUTURE}), {"published_at"}),
    "published-at-without-zone": (
        CREATE_ENTRY.but(json={"headline": "x", "published_at": "2024-11-05T20:00:00"}),
        {"published_at"},
    ),
    "draft-pinned": (
        CREATE_ENTRY.but(json={"headline": "x", "status": "draft", "pinned": True}),
        {"pinned"},
    ),
    "entry-body-null": (UPDATE_ENTRY.but(json={"body": None}), {"body"}),
    "query-limit-zero": (
        Call("GET", "/api/v1/blogs/vote-night/entries?limit=0", "none"),
        {"limit"},
    ),
    "query-since-negative": (
        Call("GET", "/api/v1/blogs/vote-night/events?since=-1", "none"),
        {"since"},
    ),
    "query-status-deleted": (
        Call("GET", "/api/v1/blogs/vote-night/entries?status=deleted", "none"),
        {"status"},
    ),
}


@pytest.mark.parametrize(
    ("call", "fields"), list(INVALID_FIELDS.values()), ids=list(INVALID_FIELDS)
)
async def test_an_invalid_field_is_422_naming_the_field(
    client: httpx.AsyncClient, desk: Desk, call: Call, fields: set[str]
) -> None:
    await refused(client, desk, call, 422, "invalid_input", fields)


@pytest.mark.parametrize(
    "call",
    [
        CREATE_ENTRY.but(json={}),
        CREATE_ENTRY.but(json={"headline": "", "body": "   ", "media": []}),
        # Sanitising leaves nothing of this body, so the entry would render as nothing.
        CREATE_ENTRY.but(json={"body": "<script>alert(1)</script><style>p{}</style>"}),
        UPDATE_ENTRY.but(json={"headline": None, "body": ""}),
    ],
    ids=["nothing", "blank", "only-unsafe-markup", "edited-to-nothing"],
)
async def test_an_entry_without_headline_body_or_media_is_422(
    client: httpx.AsyncClient, desk: Desk, call: Call
) -> None:
    await refused(client, desk, call, 422, "invalid_input", UNCHECKED)


@pytest.mark.parametrize(
    "call",
    [
        CREATE_ENTRY.but(json={"headline": "nul\u0000byte"}),
        CREATE_BLOG.but(json={**NEW_BLOG, "title": "nul\u0000byte"}),
    ],
    ids=["entry-headline", "blog-title"],
)
async def test_text_with_a_nul_byte_is_422_not_a_server_error(
    client: httpx.AsyncClient, desk: Desk, call: Call
) -> None:
    # PostgreSQL cannot store U+0000 in text; both databases should refuse it alike.
    await refused(client, desk, call, 422, "invalid_input", UNCHECKED)


async def test_reusing_an_idempotency_key_for_a_different_entry_is_422(
    client: httpx.AsyncClient, desk: Desk
) -> None:
    first = await send(client, desk, CREATE_ENTRY.but(headers={"Idempotency-Key": "k-1"}))
    assert first.status_code == 201, first.text
    call = CREATE_ENTRY.but(json={"headline": "Something else"}, headers={"Idempotency-Key": "k-1"})
    await refused(client, desk, call, 422, "idempotency_key_reused", through_the_api=True)


# --- the server keeps serving --------------------------------------------------

BAD_REQUESTS = {
    "malformed-json": CREATE_ENTRY.but(
        json=None, content=b'{"headline": ', headers={"Content-Type": "application/json"}
    ),
    "chunked-over-limit": CREATE_ENTRY.but(
        json=None, content=json_of_size(4 * MAX_BODY_BYTES), chunked=True
    ),
    "declared-over-limit": CREATE_ENTRY.but(
        json=None,
        content=json_of_size(4 * MAX_BODY_BYTES),
        headers={"Content-Type": "application/json"},
    ),
    "invalid-field": CREATE_ENTRY.but(json={"headline": "x", "colour": "red"}),
    "not-json": CREATE_ENTRY.but(json=None, content=b"x", headers={"Content-Type": "text/plain"}),
    "no-token": CREATE_ENTRY.but(auth="unknown"),
}


@pytest.mark.parametrize("bad", list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
async def test_a_good_request_succeeds_after_a_refused_one_on_the_same_client(
    client: httpx.AsyncClient, desk: Desk, bad: Call
) -> None:
    refused_response = await send(client, desk, bad)
    assert 400 <= refused_response.status_code < 500, refused_response.text

    good = await send(client, desk, CREATE_ENTRY.but(json={"headline": "Still here"}))
    assert good.status_code == 201, good.text
    latest = (await client.get("/api/v1/blogs/vote-night/entries")).json()["items"][0]
    assert latest["headline"] == "Still here"


# --- nothing the API shows changes ---------------------------------------------

JSON_BODY = {"json": None, "headers": {"Content-Type": "application/json"}}
# One refusal of each kind tested above with many requests, read back through the API as
# well as table by table. (Each kind tested with one request reads it back in its test.)
ONE_OF_EACH_KIND = {
    "malformed-json": (CREATE_ENTRY.but(**JSON_BODY, content=b"{"), 400, "malformed_json"),
    "invalid-cursor": (Call("GET", ENTRIES_PAGE + "not-a-cursor!", "none"), 400, "invalid_cursor"),
    "invalid-idempotency-key": (
        CREATE_ENTRY.but(headers={"Idempotency-Key": "two words"}),
        400,
        "invalid_idempotency_key",
    ),
    "revoked-token": (CREATE_ENTRY.but(auth="revoked"), 401, "unauthorised"),
    "publish-token-doing-admin-work": (CREATE_TOKEN.but(auth="publish"), 403, "forbidden"),
    "unknown-blog": (
        Call("POST", "/api/v1/blogs/no-such-blog/entries", json={"headline": "Lost"}),
        404,
        "not_found",
    ),
    "entry-of-another-blog": (
        UPDATE_ENTRY.but(path="/api/v1/blogs/vote-night/entries/{other_entry}"),
        404,
        "not_found",
    ),
    "unknown-route": (Call("POST", "/api/v1/nowhere", json={"headline": "x"}), 404, "not_found"),
    "wrong-method": (
        Call("PUT", "/api/v1/blogs/vote-night/entries/{entry}", json={"headline": "Put"}),
        405,
        "method_not_allowed",
    ),
    "since-ahead-of-head": (
        Call("GET", "/api/v1/blogs/vote-night/events?since=1000", "none"),
        409,
        "since_ahead_of_head",
    ),
    "body-over-the-limit": (
        CREATE_ENTRY.but(**JSON_BODY, content=json_of_size(2 * MAX_BODY_BYTES), chunked=True),
        413,
        "payload_too_large",
    ),
    "not-json": (
        CREATE_BLOG.but(json=None, content=b"{}", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    ),
    "invalid-field": (
        CREATE_ENTRY.but(json={"headline": "x", "colour": "red"}),
        422,
        "invalid_input",
        {"colour"},
    ),
    "entry-with-nothing": (CREATE_ENTRY.but(json={}), 422, "invalid_input", UNCHECKED),
    "nul-byte": (
        CREATE_BLOG.but(json={**NEW_BLOG, "title": "nul\u0000byte"}),
        422,
        "invalid_input",
        UNCHECKED,
    ),
}


@pytest.mark.parametrize("refusal", list(ONE_OF_EACH_KIND.values()), ids=list(ONE_OF_EACH_KIND))
async def test_a_refused_request_changes_nothing_the_api_shows(
    client: httpx.AsyncClient, desk: Desk, refusal: tuple
) -> None:
    call, status, code, *fields = refusal
    await refused(client, desk, call, status, code, *fields, through_the_api=True)
