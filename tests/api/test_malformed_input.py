"""Malformed numbers and times from a client are refused with a JSON error, never a 500.

Each case once answered 500 with a traceback in the log (anonymous, up to the rate limit)
or was read as another value: a resume point or cursor id in other scripts' digits, a
cursor or a time whose UTC form falls outside the years Python can hold, a number where a
time or a boolean belongs. Every refusal here writes nothing and logs no error.
"""

import asyncio
import base64
import logging
from typing import Any

import httpx
import pytest

from app.models import FIRST_YEAR, LAST_YEAR
from app.schemas import MOMENT
from tests.support.factories import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SLUG = "vote-night"
ENTRIES = f"/api/v1/blogs/{SLUG}/entries"


@pytest.fixture
def no_traceback(caplog: pytest.LogCaptureFixture):
    """Fails the test if anything logged an error (a traceback) while it ran."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [], [record.getMessage() for record in errors]


def old_cursor(raw: str) -> str:
    """A cursor in the base64 form the server gave out before its cursors were readable."""
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def stored(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    blogs = (await client.get("/api/v1/blogs", params={"limit": 100})).json()
    state: dict[str, Any] = {"blogs": blogs}
    for slug in [blog["slug"] for blog in blogs["items"]]:
        entries = f"/api/v1/blogs/{slug}/entries"
        state[slug] = {
            "published": (await client.get(entries, params={"limit": 100})).json(),
            "drafts": (
                await client.get(entries, params={"limit": 100, "status": "draft"}, headers=ADMIN)
            ).json(),
            "log": (await client.get(f"/api/v1/blogs/{slug}/events?limit=1000")).json(),
        }
    return state


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.fixture
async def entry(client: httpx.AsyncClient, blog: dict) -> dict:
    response = await client.post(ENTRIES, json={"headline": "Polls open"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


# --- resume points ----------------------------------------------------------------

NOT_A_SEQ = {
    "superscript-two": "²",
    "circled-one": "\u2460",
    "arabic-indic-twelve": "\u0661\u0662",
    "over-4300-digits": "9" * 5000,
    "eleven-digits": "0" * 11,
}


@pytest.mark.parametrize("since", list(NOT_A_SEQ.values()), ids=list(NOT_A_SEQ))
async def test_sse_since_in_anything_but_ascii_digits_is_400_invalid_since(
    client: httpx.AsyncClient, entry: dict, since: str, no_traceback: None
) -> None:
    # A since read as a seq would open a stream that never ends: bounded, so it fails instead.
    async with asyncio.timeout(10):
        response = await client.get(f"/api/v1/blogs/{SLUG}/sse", params={"since": since})
    assert_refused(response, 400, "invalid_since")


@pytest.mark.parametrize(
    "raw", ["²".encode("latin-1"), b"9" * 5000], ids=["latin1-superscript", "5000-digits"]
)
async def test_a_last_event_id_that_is_not_a_seq_is_400_invalid_since(
    client: httpx.AsyncClient, entry: dict, raw: bytes, no_traceback: None
) -> None:
    async with asyncio.timeout(10):
        response = await client.get(f"/api/v1/blogs/{SLUG}/sse", headers={"Last-Event-ID": raw})
    assert_refused(response, 400, "invalid_since")


# The log's `since` is an integer parameter: leading zeros are still a number there.
NOT_AN_INTEGER = {name: value for name, value in NOT_A_SEQ.items() if value.strip("0")}


@pytest.mark.parametrize("since", list(NOT_AN_INTEGER.values()), ids=list(NOT_AN_INTEGER))
async def test_the_log_refuses_a_since_in_anything_but_ascii_digits(
    client: httpx.AsyncClient, entry: dict, since: str, no_traceback: None
) -> None:
    response = await client.get(f"/api/v1/blogs/{SLUG}/events", params={"since": since})
    assert_refused(response, 422, "invalid_input")


@pytest.mark.parametrize(
    "path",
    [
        ENTRIES + "/%2B{id}",  # +1
        ENTRIES + "/0_{id}",
        ENTRIES + "/%20{id}",
        ENTRIES + "/%D9%A1",  # Arabic-Indic one
        ENTRIES + "?limit=1_0",
        ENTRIES + "?limit=%2B5",
        f"/api/v1/blogs/{SLUG}/events?since=%2B0",
        f"/api/v1/blogs/{SLUG}/events?since=0_0",
        "/api/v1/blogs?limit=%205",
        "/api/v1/tokens/%2B1",
    ],
)
async def test_a_number_in_a_path_or_query_is_ascii_digits_and_nothing_else(
    client: httpx.AsyncClient, entry: dict, path: str, no_traceback: None
) -> None:
    # int() reads "+1", " 1" and "0_1" as 1: each of these once answered for entry 1.
    response = await client.request(
        "DELETE" if "/tokens/" in path else "GET", path.format(id=entry["id"]), headers=ADMIN
    )
    assert_refused(response, 422, "invalid_input")


async def test_a_content_length_too_long_for_int_is_413_not_a_crash(
    client: httpx.AsyncClient, blog: dict, no_traceback: None
) -> None:
    before = await stored(client)
    headers = {**ADMIN, "Content-Length": "9" * 5000, "Content-Type": "application/json"}
    response = await client.post(ENTRIES, content=b'{"headline": "x"}', headers=headers)
    assert_refused(response, 413, "payload_too_large")
    assert await stored(client) == before


# --- cursors ------------------------------------------------------------------------

OUT_OF_RANGE_CURSORS = {
    # UTC is a day before year 1 / after year 9999: astimezone() overflowed.
    "year-1-at-plus-14": old_cursor("0001-01-01T00:00:00+14:00|1"),
    "year-9999-at-minus-14": old_cursor("9999-12-31T23:59:59-14:00|1"),
    # int() reads other scripts' digits, spaces, signs and underscores.
    "arabic-indic-id": old_cursor("2024-11-05T20:00:00+00:00|\u0661"),
    "underscored-id": old_cursor("2024-11-05T20:00:00+00:00|1_0"),
    "spaced-id": old_cursor("2024-11-05T20:00:00+00:00| 1"),
    "empty": "",
    "unicode-digits-in-the-new-form": "\u0661_\u0661",
}


@pytest.mark.parametrize(
    "cursor", list(OUT_OF_RANGE_CURSORS.values()), ids=list(OUT_OF_RANGE_CURSORS)
)
async def test_an_entry_cursor_out_of_range_or_in_other_digits_is_400_invalid_cursor(
    client: httpx.AsyncClient, entry: dict, cursor: str, no_traceback: None
) -> None:
    response = await client.get(ENTRIES, params={"before": cursor})
    assert_refused(response, 400, "invalid_cursor")
    page = await client.get(f"/blogs/{SLUG}", params={"before": cursor})
    assert page.status_code == 400
    assert "That page link is not valid." in page.text


@pytest.mark.parametrize(
    "cursor",
    [old_cursor("\u0661"), old_cursor(" 5"), old_cursor("+5"), old_cursor("1_0"), "", "\u0661"],
)
async def test_a_blog_cursor_that_is_not_ascii_digits_is_400_invalid_cursor(
    client: httpx.AsyncClient, blog: dict, cursor: str, no_traceback: None
) -> None:
    response = await client.get("/api/v1/blogs", params={"before": cursor})
    assert_refused(response, 400, "invalid_cursor")


async def test_cursors_are_readable_and_any_value_of_their_pattern_is_a_place_in_the_list(
    client: httpx.AsyncClient, entry: dict, no_traceback: None
) -> None:
    second = await client.post(ENTRIES, json={"headline": "Exit poll"}, headers=ADMIN)
    assert second.status_code == 201
    page = (await client.get(ENTRIES, params={"limit": 1})).json()
    micros, entry_id = page["next_cursor"].split("_")
    assert int(entry_id) == second.json()["id"] and micros.isdigit()
    older = (await client.get(ENTRIES, params={"before": page["next_cursor"]})).json()
    assert [item["id"] for item in older["items"]] == [entry["id"]]
    # Past the newest moment and the largest id: everything; before the oldest: nothing.
    everything = await client.get(ENTRIES, params={"before": "9" * 18 + "_" + "9" * 10})
    assert [item["id"] for item in everything.json()["items"]] == [second.json()["id"], entry["id"]]
    nothing = await client.get(ENTRIES, params={"before": "-" + "9" * 18 + "_1"})
    assert nothing.json()["items"] == []
    assert (await client.get("/api/v1/blogs", params={"before": "9" * 10})).json()["items"]
    assert (await client.get("/api/v1/blogs", params={"before": "0"})).json()["items"] == []
    # Cursors of the base64 form keep working, for links made before.
    published_at = second.json()["published_at"].replace("Z", "+00:00")
    legacy = await client.get(
        ENTRIES, params={"before": old_cursor(f"{published_at}|{second.json()['id']}")}
    )
    assert [item["id"] for item in legacy.json()["items"]] == [entry["id"]]


# --- times --------------------------------------------------------------------------

OUT_OF_RANGE_TIMES = {
    "year-1-at-plus-14": "0001-01-01T00:00:00+14:00",
    "year-9999-at-minus-14": "9999-12-31T23:59:59-14:00",
    "year-1-in-utc": "0001-01-01T00:00:00Z",
    "year-9999-in-utc": "9999-12-31T00:00:00Z",
    "no-offset": "2024-11-05T20:00:00",
    "a-date-only": "2024-11-05",
    "seconds-since-1970-as-text": "1700000000",
}
NOT_TIMES = {**OUT_OF_RANGE_TIMES, "seconds-since-1970": 1_700_000_000, "zero": 0}


@pytest.mark.parametrize("moment", list(NOT_TIMES.values()), ids=list(NOT_TIMES))
async def test_an_entry_time_out_of_range_or_not_rfc3339_text_is_422_and_stores_nothing(
    client: httpx.AsyncClient, entry: dict, moment: Any, no_traceback: None
) -> None:
    before = await stored(client)
    created = await client.post(
        ENTRIES, json={"headline": "Back-filled", "published_at": moment}, headers=ADMIN
    )
    assert set(assert_refused(created, 422, "invalid_input")["fields"]) == {"published_at"}
    edited = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"published_at": moment}, headers=ADMIN
    )
    assert set(assert_refused(edited, 422, "invalid_input")["fields"]) == {"published_at"}
    assert await stored(client) == before


@pytest.mark.parametrize("field", ["coverage_start", "coverage_end"])
@pytest.mark.parametrize("moment", list(NOT_TIMES.values()), ids=list(NOT_TIMES))
async def test_a_coverage_time_out_of_range_or_not_rfc3339_text_is_422_and_stores_nothing(
    client: httpx.AsyncClient, blog: dict, field: str, moment: Any, no_traceback: None
) -> None:
    before = await stored(client)
    created = await client.post(
        "/api/v1/blogs", json={"slug": "recount", "title": "Recount", field: moment}, headers=ADMIN
    )
    assert set(assert_refused(created, 422, "invalid_input")["fields"]) == {field}
    edited = await client.patch(f"/api/v1/blogs/{SLUG}", json={field: moment}, headers=ADMIN)
    assert set(assert_refused(edited, 422, "invalid_input")["fields"]) == {field}
    assert await stored(client) == before


def test_the_time_pattern_admits_exactly_the_years_that_are_accepted() -> None:
    for year in range(10_000):
        written = f"{year:04d}-06-01T12:00:00+14:00"
        assert bool(MOMENT.fullmatch(written)) == (FIRST_YEAR <= year <= LAST_YEAR), year


async def test_the_first_and_last_years_accepted_are_shown_in_any_time_zone(
    client: httpx.AsyncClient, no_traceback: None
) -> None:
    created = await client.post(
        "/api/v1/blogs",
        json={
            "slug": "far-zone",
            "title": "Far",
            "timezone": "Pacific/Kiritimati",
            "coverage_start": "0002-01-01T00:00:00+14:00",
            "coverage_end": "9998-12-31T23:59:59-12:00",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    assert created.json()["coverage_start"] == "0001-12-31T10:00:00Z"
    assert created.json()["coverage_end"] == "9999-01-01T11:59:59Z"
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        changed = await client.patch(
            "/api/v1/blogs/far-zone", json={"timezone": zone}, headers=ADMIN
        )
        assert changed.status_code == 200
        response = await client.post(
            "/api/v1/blogs/far-zone/entries",
            json={"headline": "Long ago", "published_at": "0002-01-01T00:00:00+14:00"},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        for path in ("/blogs/far-zone", "/blogs/far-zone/feed.atom", "/blogs/far-zone/feed.json"):
            assert (await client.get(path)).status_code == 200, path


# --- loose coercion -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"headline": "x", "key_event": "yes"},
        {"headline": "x", "key_event": 1},
        {"headline": "x", "pinned": 0.0},
        {"headline": "x", "pinned": "false"},
    ],
    ids=["yes", "one", "zero-float", "false-text"],
)
async def test_a_boolean_must_be_true_or_false_not_a_word_or_number(
    client: httpx.AsyncClient, blog: dict, body: dict, no_traceback: None
) -> None:
    before = await stored(client)
    response = await client.post(ENTRIES, json=body, headers=ADMIN)
    assert_refused(response, 422, "invalid_input")
    assert await stored(client) == before


async def test_coverage_end_zero_does_not_end_a_live_blog_in_1970(
    client: httpx.AsyncClient, blog: dict, no_traceback: None
) -> None:
    response = await client.patch(f"/api/v1/blogs/{SLUG}", json={"coverage_end": 0}, headers=ADMIN)
    assert_refused(response, 422, "invalid_input")
    assert (await client.get(f"/api/v1/blogs/{SLUG}")).json()["coverage_end"] is None
