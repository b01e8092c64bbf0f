"""Log lines (app/logs.py): JSON lines with the request id and the record's fields, secrets
masked, and the request id every answer carries (taken from the caller when well formed)."""

import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from app.logs import TEXT_FORMAT, JsonLines, RequestIdFilter, request_id
from tests.support.factories import ADMIN, ADMIN_TOKEN, create_blog

GENERATED = re.compile(r"[0-9a-f]{32}")


class Lines:
    """A logger whose lines are kept, formatted as a serving process formats them."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        self.logger = logging.getLogger(f"bulletin.test.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(handler)

    def text(self) -> str:
        return self.stream.getvalue()

    def json(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    lines = Lines(JsonLines())
    yield lines
    lines.logger.handlers.clear()


def test_a_json_line_has_time_level_logger_message_request_id_and_the_fields(
    json_lines: Lines,
) -> None:
    token = request_id.set("desk-4711")
    try:
        json_lines.logger.info("committed %s seq %d", "vote-night", 7, extra={"seq": 7})
    finally:
        request_id.reset(token)
    (line,) = json_lines.json()
    assert line["level"] == "INFO"
    assert line["logger"] == json_lines.logger.name
    assert line["message"] == "committed vote-night seq 7"
    assert line["request_id"] == "desk-4711"
    assert line["seq"] == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", line["time"])


def test_a_request_id_named_in_the_record_wins_over_the_current_one(json_lines: Lines) -> None:
    # How another process's delivery line names the publish it delivers.
    token = request_id.set("this-process")
    try:
        json_lines.logger.info("delivered", extra={"request_id": "the-publisher"})
    finally:
        request_id.reset(token)
    assert json_lines.json()[0]["request_id"] == "the-publisher"


def test_outside_a_request_the_request_id_is_empty(json_lines: Lines) -> None:
    json_lines.logger.warning("checking heads failed")
    assert json_lines.json()[0]["request_id"] == ""


def test_secrets_never_reach_a_line(json_lines: Lines) -> None:
    json_lines.logger.info(
        "refused Authorization: Bearer %s for %s",
        ADMIN_TOKEN,
        "desk",
        extra={"token": ADMIN_TOKEN, "webhook_secret": "whsec_c2VjcmV0", "password": "hunter22"},
    )
    json_lines.logger.warning(
        "cannot reach %s", "postgresql+asyncpg://bulletin:hunter2-db@db.internal:5432/bulletin"
    )
    json_lines.logger.info(
        "look-up failed: GET https://graph.example/oembed?url=x&access_token=EAAB0meta1 timed out"
    )
    try:
        raise ValueError(f"bad token {ADMIN_TOKEN}")
    except ValueError:
        json_lines.logger.exception("could not check")
    text = json_lines.text()
    for secret in (ADMIN_TOKEN, "c2VjcmV0", "hunter22", "hunter2-db", "EAAB0meta1"):
        assert secret not in text
    refused, unreachable, looked_up, failed = json_lines.json()
    assert refused["message"] == "refused Authorization: [redacted] for desk"
    assert refused["token"] == refused["webhook_secret"] == refused["password"] == "[redacted]"
    assert unreachable["message"] == (
        "cannot reach postgresql+asyncpg://[redacted]@db.internal:5432/bulletin"
    )
    assert looked_up["message"].endswith("?url=x&access_token=[redacted] timed out")
    assert "ValueError: bad token [redacted]" in failed["exception"]


def test_a_text_line_names_the_request() -> None:
    lines = Lines(logging.Formatter(TEXT_FORMAT))
    token = request_id.set("desk-4711")
    try:
        lines.logger.warning("webhook 3 disabled after 20 failures")
    finally:
        request_id.reset(token)
        lines.logger.handlers.clear()
    assert (
        lines.text()
        .rstrip()
        .endswith(f"WARNING {lines.logger.name} [desk-4711] webhook 3 disabled after 20 failures")
    )


# --- request ids on answers ---------------------------------------------------------------


async def test_a_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    for offered in ("desk-4711", "0f8e9d2c1b3a40a5b6c7d8e9f0a1b2c3", "trace:9a.1_b"):
        response = await client.get("/healthz", headers={"X-Request-ID": offered})
        assert response.headers["X-Request-ID"] == offered


async def test_a_malformed_or_missing_request_id_is_replaced_by_a_new_one(
    client: httpx.AsyncClient,
) -> None:
    answers = [
        await client.get("/healthz", headers={"X-Request-ID": offered})
        for offered in ("two words", "x" * 129, "-leading-dash", "")
    ]
    answers.append(await client.get("/healthz"))
    ids = [answer.headers["X-Request-ID"] for answer in answers]
    assert all(GENERATED.fullmatch(rid) for rid in ids), ids
    assert len(set(ids)) == len(ids)


async def test_errors_and_publishes_carry_the_request_id_too(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/blogs/no-such-blog", headers={"X-Request-ID": "desk-1"})
    assert missing.status_code == 404
    assert missing.headers["X-Request-ID"] == "desk-1"
    await create_blog(client, "vote-night")
    published = await client.post(
        "/api/v1/blogs/vote-night/entries",
        json={"headline": "Polls close"},
        headers={**ADMIN, "X-Request-ID": "desk-2"},
    )
    assert published.status_code == 201
    assert published.headers["X-Request-ID"] == "desk-2"
