"""The OpenAPI schema is the contract: Schemathesis checks every operation against it.

Every default check of Schemathesis runs (no 5xx; status codes, content types, headers
and bodies as documented; data the schema allows is accepted and data it forbids is
refused; a wrong method gets 405 with an `Allow` listing the path's methods; documented
auth is enforced), in every default phase (examples, coverage, fuzzing) and mode
(positive and negative), against a real server on each database.

The number of fuzzed examples per operation is small so the suite stays fast;
`BULLETIN_CONTRACT_EXAMPLES=500 make contract` runs the same test deeper.
"""

import contextlib
import copy
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import uvicorn

from app.config import Settings
from app.main import create_app
from app.sanitising import sanitise_html
from app.schemas import NOT_BLANK
from app.serving import uvicorn_options
from app.webhooks.delivery import Sender
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN_TOKEN

EXAMPLES = int(os.environ.get("BULLETIN_CONTRACT_EXAMPLES", "10"))
STEPS = 6  # calls in one stateful scenario
SECRET_KEY = "contract-test-secret-key-0123456789-abcdefghij"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SLUG = "vote-night"
SEEDED_USER = 1

# The schema is the app's own: built without a database, as /openapi.json serves it.
OPENAPI = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
ENTRIES = "/api/v1/blogs/{slug}/entries"
MEDIA = "/api/v1/blogs/{slug}/media"
schema = schemathesis.openapi.from_dict(
    copy.deepcopy(OPENAPI),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20261201,
            "generation": {
                "max-examples": EXAMPLES,
                # PostgreSQL cannot store NUL, so every text field refuses it (documented).
                "allow-x00": False,
            },
            "request-timeout": 10,
            "operations": [
                {
                    # JSON Schema can say a file is binary, not that it is a photo: an upload
                    # the schema allows may still be no image (415), a broken one or one
                    # with too many pixels (422). tests/media/ checks each answer.
                    "include-path": MEDIA,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", 401, 403, 404, 409, 415, 422, 429]
                        }
                    },
                }
            ],
        }
    ),
).exclude(
    # A valid request opens a stream that never ends; tests/realtime covers them.
    operation_id=[
        "stream_sse_api_v1_blogs__slug__sse_get",
        "stream_newsroom_sse_api_v1_blogs__slug__newsroom_sse_get",
        "stream_blogs_sse_api_v1_streams_sse_get",
    ]
)


@contextlib.asynccontextmanager
async def _client_without_network(_sender: Sender) -> AsyncIterator[httpx.AsyncClient]:
    """Webhook receivers that answer 204 without a socket: generated URLs go nowhere."""
    transport = httpx.MockTransport(lambda _request: httpx.Response(204))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """Serve the app with uvicorn, as `bulletin serve` does, on a thread of its own."""
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, **{**uvicorn_options(settings), "log_level": "warning"}
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name="contract-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _seed(base_url: str) -> None:
    """A blog with an entry, a webhook and a user who is a member of it, so generated
    requests also meet real ones."""
    with httpx.Client(base_url=base_url, headers=ADMIN) as client:
        for path, body in [
            ("/api/v1/blogs", {"slug": SLUG, "title": "Vote night"}),
            (f"/api/v1/blogs/{SLUG}/entries", {"headline": "Polls open"}),
            (
                f"/api/v1/blogs/{SLUG}/webhooks",
                {"url": "https://hooks.example.com/in", "secret": "whsec_" + "A" * 32},
            ),
            ("/api/v1/users", {"name": "Sam Vale", "login": "sam@news.test", "password": "x" * 12}),
            (f"/api/v1/blogs/{SLUG}/members/{SEEDED_USER}", {"role": "editor"}),
        ]:
            method = "PUT" if "/members/" in path else "POST"
            response = client.request(method, path, json=body)
            assert response.status_code == 201, response.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a server on a fresh database of each kind."""
    database_url = fresh_database(request.param, request, tmp_path_factory.mktemp("contract"))
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        rate_limit_enabled=False,
        # The body limit is a setting, not part of the schema: here every request the schema
        # allows fits (100,000 characters of body, JSON-escaped, are over 256 KiB).
        max_body_bytes=8 * 1024 * 1024,
        # Generated webhook URLs name hosts that do not exist: none is resolved, and no
        # delivery leaves the process (_client_without_network).
        webhook_allow_private_targets=True,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Sender, "client", _client_without_network)
        with serving(settings) as base_url:
            _seed(base_url)
            yield base_url


def keep_rules_the_schema_cannot_state(case: schemathesis.Case) -> None:
    """Bend a request the schema allows to the few rules JSON Schema cannot state, which
    depend on what is stored or on the clock; the documentation of each field states its
    rule. Requests meant to be refused are sent as generated."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    headers = case.headers or {}
    if "idempotency-key" in {name.lower() for name in headers}:
        # A key names one request: reused for another, it is refused (422, as the IETF
        # Idempotency-Key draft says).
        for name in [name for name in headers if name.lower() == "idempotency-key"]:
            headers[name] = (uuid.uuid4().hex + str(headers[name]))[:255]
    for name in [name for name in headers if name.lower() == "if-match"]:
        # An entity tag is current only while nobody changes what it names: "*" always is.
        # (Its positive phase also sends header values outside the stated pattern.)
        headers[name] = "*"
    body = case.body if isinstance(case.body, dict) else {}
    if isinstance(body.get("published_at"), str) and _later_than_now(body["published_at"]):
        body["published_at"] = "2024-11-05T20:00:00Z"  # it may not be in the future
    if isinstance(body.get("publish_at"), str):
        # A schedule is later than now and at most a year ahead.
        body["publish_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    if isinstance(body.get("user_id"), int | float):  # JSON's 126.0 is an integer too
        body["user_id"] = SEEDED_USER  # a token is made for a user who exists
    if isinstance(body.get("blogs"), list):
        body["blogs"] = [SLUG]  # and narrowed to blogs that exist
    if body.get("previous_slug") is not None:
        # It names another blog that exists.
        own_slug = (case.path_parameters or {}).get("slug")
        body["previous_slug"] = SLUG if own_slug != SLUG else None
    if case.operation.path.startswith(ENTRIES):
        # A media_id names a photo uploaded to that blog; none is, so name one by URL instead.
        for item in body.get("media") or []:
            if isinstance(item, dict) and "media_id" in item:
                del item["media_id"]
                item["url"] = "https://photos.example.com/harbour.jpg"
        # An entry keeps a headline, a body that sanitising leaves something of, or media.
        if case.method == "POST" and not (
            body.get("headline") or body.get("media") or _has_text(body.get("body", ""))
        ):
            body["headline"] = "Polls open"
        if case.method == "PATCH":
            # A correction goes with an entry that is published now (422 otherwise), which
            # depends on what is stored: tests/api/test_corrections.py sends them.
            body.pop("correction", None)
            for field in ("headline", "body", "media"):
                kept = body.get(field) if field == "media" else _has_text(body.get(field))
                if field in body and not kept:
                    del body[field]


def _has_text(html: object) -> bool:
    return isinstance(html, str) and NOT_BLANK.search(sanitise_html(html)) is not None


def _later_than_now(moment: str) -> bool:
    try:
        return datetime.fromisoformat(moment.upper()) > datetime.now(UTC)
    except ValueError:
        return False  # not a valid time: the server refuses it, as it should


@schema.parametrize()
def test_the_api_keeps_its_openapi_contract(case: schemathesis.Case, api: str) -> None:
    keep_rules_the_schema_cannot_state(case)
    case.call_and_validate(base_url=api, headers=ADMIN)


def test_sequences_of_calls_keep_the_contract(api: str) -> None:
    """The stateful phase: chains of calls that feed one answer into the next request
    (create a blog, then read, edit and write to it), with the checks that need a history:
    a created resource can be read, a deleted one is gone."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            keep_rules_the_schema_cannot_state(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": api, "headers": ADMIN}

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
        )
    )


# --- what Schemathesis found once, stated plainly ------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/api/v1/blogs", "GET, POST"),
        ("DELETE", "/api/v1/blogs", "GET, POST"),
        ("PUT", f"/api/v1/blogs/{SLUG}", "GET, PATCH"),
        ("PUT", f"/api/v1/blogs/{SLUG}/entries/1", "DELETE, GET, PATCH"),
        ("DELETE", "/api/v1/tokens", "GET, POST"),
        ("PUT", f"/api/v1/blogs/{SLUG}/webhooks", "GET, POST"),
        ("PUT", f"/api/v1/blogs/{SLUG}/webhooks/1", "DELETE, GET, PATCH"),
        ("POST", f"/blogs/{SLUG}/feed.atom", "GET, HEAD"),
    ],
)
async def test_a_wrong_method_gets_405_with_every_method_of_the_path_in_allow(
    client: httpx.AsyncClient, blog: dict, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=ADMIN)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


@pytest.mark.parametrize("path", [ENTRIES, f"{ENTRIES}/{{entry_id}}"])
async def test_public_reads_take_a_token_without_needing_one_and_document_its_401(
    client: httpx.AsyncClient, blog: dict, path: str
) -> None:
    operation = OPENAPI["paths"][path]["get"]
    assert {} in operation["security"] and {"HTTPBearer": []} in operation["security"]
    assert "401" in operation["responses"]
    url = path.format(slug=SLUG, entry_id=1)
    unknown = {"Authorization": "Bearer bltn_not-a-token-anyone-was-given"}
    assert (await client.get(url, headers=unknown)).status_code == 401
    assert (await client.get(url)).status_code in {200, 404}


def test_every_operation_but_the_operations_endpoints_documents_429() -> None:
    unlimited = {"/healthz", "/readyz", "/metrics"}
    missing = [
        f"{method.upper()} {path}"
        for method, path, operation in _operations()
        if path not in unlimited and "429" not in operation["responses"]
    ]
    assert missing == []


def test_creating_a_token_documents_the_400_of_malformed_json() -> None:
    assert "400" in OPENAPI["paths"]["/api/v1/tokens"]["post"]["responses"]


def _properties(name: str) -> dict[str, Any]:
    return OPENAPI["components"]["schemas"][name]["properties"]


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_nullable(s) for s in schema.get("anyOf", []))


@pytest.mark.parametrize(
    ("model", "clearable"),
    [
        ("EntryUpdate", {"headline"}),
        ("BlogUpdate", {"coverage_end", "previous_slug"}),
        ("WebhookUpdate", set()),
    ],
)
def test_only_fields_that_null_clears_are_nullable(model: str, clearable: set[str]) -> None:
    nullable = {name for name, schema in _properties(model).items() if _nullable(schema)}
    assert nullable == clearable


@pytest.mark.parametrize("field", ["status", "pinned", "key_event", "published_at", "body"])
async def test_null_for_an_entry_field_that_cannot_be_cleared_is_422_naming_it(
    client: httpx.AsyncClient, blog: dict, field: str
) -> None:
    created = await client.post(
        f"/api/v1/blogs/{SLUG}/entries", json={"headline": "Polls open"}, headers=ADMIN
    )
    response = await client.patch(
        f"/api/v1/blogs/{SLUG}/entries/{created.json()['id']}", json={field: None}, headers=ADMIN
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {field}


def test_the_schema_states_the_constraints_the_server_enforces() -> None:
    blog = _properties("BlogCreate")
    assert "Europe/London" in blog["timezone"]["enum"]
    assert "pattern" in blog["coverage_start"]["anyOf"][0]
    assert "pattern" in _properties("EntryUpdate")["published_at"]
    webhook = _properties("WebhookCreate")
    assert {"url", "secret"} <= {name for name, s in webhook.items() if "pattern" in s}
    assert "anyOf" in OPENAPI["components"]["schemas"]["EntryCreate"]  # not empty
    reading = {p["name"]: p for p in OPENAPI["paths"][ENTRIES]["get"]["parameters"]}
    assert "pattern" in reading["before"]["schema"]
    writing = {p["name"]: p for p in OPENAPI["paths"][ENTRIES]["post"]["parameters"]}
    assert "pattern" in writing["idempotency-key"]["schema"]
