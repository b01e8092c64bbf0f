"""A malformed resume point is refused the same way on every stream, and is never a crash.

`str.isdigit` also says yes to superscripts, circled digits and other scripts' digits;
`int` then fails on some (a 500, or a WebSocket closed with 1011, which clients retry) and
reads others as a number. More than 4,300 digits make `int` itself refuse. Each runs over
a real server, on Bulletin's own WebSocket edge and on uvicorn's ASGI path.
"""

import logging
from urllib.parse import quote

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.factories import ADMIN_TOKEN
from tests.support.servers import LiveServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SLUG = "vote-night"

MALFORMED = {
    "superscript-two": "²",
    "circled-one": "\u2460",
    "arabic-indic-twelve": "\u0661\u0662",
    "fullwidth-one": "\uff11",
    "over-4300-digits": "9" * 5000,
    "eleven-digits": "0" * 11,
    "underscore": "1_0",
}


async def create_blog(server: LiveServer) -> None:
    response = await server.client.post(
        "/api/v1/blogs", json={"slug": SLUG, "title": "Vote night"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def no_traceback(caplog: pytest.LogCaptureFixture):
    """Fails the test if anything logged an error (a traceback) while it ran."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [], [record.getMessage() for record in errors]


@pytest.mark.parametrize("since", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_websocket_with_a_malformed_since_closes_4500_not_1011(
    server: LiveServer, since: str, no_traceback: None
) -> None:
    await create_blog(server)
    async with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws?since={quote(since)}") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4500  # malformed: do not retry
    assert "since must be a seq" in ws.close_reason


@pytest.mark.parametrize("since", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_sse_with_a_malformed_since_is_400_invalid_since(
    server: LiveServer, since: str, no_traceback: None
) -> None:
    await create_blog(server)
    response = await server.client.get(f"/api/v1/blogs/{SLUG}/sse", params={"since": since})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_since"


@pytest.mark.parametrize(
    "raw",
    # A header carries bytes: Latin-1 has the superscripts, UTF-8 the rest.
    [
        "²".encode("latin-1"),
        "¹".encode("latin-1"),
        "\u0661\u0662".encode(),
        b"9" * 5000,
        b"0" * 11,
    ],
    ids=[
        "latin1-superscript-two",
        "latin1-superscript-one",
        "utf8-arabic-indic",
        "5000-digits",
        "11-digits",
    ],
)
async def test_sse_with_a_malformed_last_event_id_is_400_invalid_since(
    server: LiveServer, raw: bytes, no_traceback: None
) -> None:
    await create_blog(server)
    response = await server.client.get(f"/api/v1/blogs/{SLUG}/sse", headers={"Last-Event-ID": raw})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_since"
