"""The stream endpoints: WebSocket and Server-Sent Events for one blog's change log."""

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse

from app.api.deps import ServicesDep, services_of
from app.api.errors import error_response
from app.config import Settings, web_origin
from app.errors import BulletinError, Forbidden, NotFound, SinceAheadOfHead, Unavailable
from app.models import MAX_INT
from app.paths import SSE_ROUTE, STREAMS_PREFIX, WEBSOCKET_ROUTE
from app.realtime.codes import CloseCode
from app.realtime.hub import Hub, Reader, StreamsStopped
from app.realtime.readers import SseReader, WebSocketReader
from app.schemas import RATE_LIMITED, ErrorPublic, error_responses

logger = logging.getLogger("bulletin.streams")
router = APIRouter(prefix=STREAMS_PREFIX, tags=["streams"], responses=RATE_LIMITED)


class InvalidSince(BulletinError):
    code = "invalid_since"


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"


def origin_refusal(settings: Settings, origins: list[str]) -> OriginNotAllowed | None:
    """Why a stream opened by a page on `origins` (its Origin headers) is refused, if it is.

    With BULLETIN_STREAM_ORIGINS unset any page may stream. Otherwise a browser's stream
    must come from a listed origin or from this server's own; a client that sends no Origin
    is not a page in a browser (and could send any Origin it liked), so it is let through.
    Checked before the rate limits, so a refused page spends no address's stream budget.
    """
    allowed = settings.stream_origins
    if not allowed or not origins:
        return None
    origin = ", ".join(origins)
    if origin in allowed or origin == web_origin(settings.public_base_url):
        return None
    return OriginNotAllowed(
        f"Pages on {origin[:100]} may not open this server's streams (see BULLETIN_STREAM_ORIGINS)."
    )


# The most digits a seq can have: MAX_INT has ten.
SEQ_DIGITS = len(str(MAX_INT))
SEQ: dict[str, object] = {"pattern": f"^[0-9]{{1,{SEQ_DIGITS}}}$"}
# Where an SSE stream resumes: the same two parameters on every SSE route.
SinceQuery = Annotated[
    str | None,
    Query(description=f"Resume after this seq (at most {MAX_INT})", json_schema_extra=SEQ),
]
LastEventIdHeader = Annotated[
    str | None,
    Header(description="Set by EventSource on reconnect; wins over `since`", json_schema_extra=SEQ),
]


def parse_since(raw: str | None) -> int | None:
    """A resume point: a non-negative integer seq in ASCII digits, or nothing.

    `str.isdigit` alone also accepts superscripts and other scripts' digits, which `int`
    then refuses or reads as another number; the length is checked before `int` is asked.
    """
    if raw is None or raw == "":
        return None
    if not (len(raw) <= SEQ_DIGITS and raw.isascii() and raw.isdigit()) or int(raw) > MAX_INT:
        raise InvalidSince(f"since must be a seq (a non-negative integer), not {raw[:40]!r}.")
    return int(raw)


async def attach_websocket_reader(hub: Hub, slug: str, reader: Reader, since: str | None) -> None:
    """Attach a WebSocket reader; a refusal closes it with the code that says what to do."""
    try:
        await hub.attach(slug, reader, parse_since(since))
    except NotFound as error:
        reader.close(CloseCode.BLOG_NOT_FOUND, error.message)
    except SinceAheadOfHead as error:
        reader.close(CloseCode.RESET, error.message)
    except InvalidSince as error:
        reader.close(CloseCode.INVALID_REQUEST, error.message)
    except StreamsStopped as error:  # the operator's kill switch
        logger.info("refused a reader of %s: its streams are stopped", slug, extra={"blog": slug})
        reader.close(CloseCode.SERVICE_RESTART, error.message)
    except Unavailable as error:
        logger.warning("a reader of %s could not be attached: %s", slug, error.message)
        reader.close(CloseCode.SERVICE_RESTART, error.message)
    except Exception:
        logger.exception("attaching a reader of %s failed", slug)
        reader.close(CloseCode.INTERNAL_ERROR, "internal error")


@router.websocket(WEBSOCKET_ROUTE)
async def stream_websocket(websocket: WebSocket, slug: str) -> None:
    """Every event of the blog as one JSON text message each; resume with `?since=SEQ`."""
    services = services_of(websocket)
    hub, settings = services.hub, services.settings
    refusal = origin_refusal(settings, websocket.headers.getlist("origin"))
    if refusal is not None:
        await refuse_handshake(websocket, refusal)
        return
    await websocket.accept()
    reader = WebSocketReader(websocket, settings.reader_buffer_bytes)
    # The pump runs from the start: a long replay waits on it to drain the buffer.
    pump = asyncio.create_task(reader.pump())
    try:
        await attach_websocket_reader(hub, slug, reader, websocket.query_params.get("since"))
        await _refuse_messages(websocket, reader, pump)
    finally:
        hub.detach(slug, reader)
        reader.close(CloseCode.GOING_AWAY, "bye")
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


async def refuse_handshake(websocket: WebSocket, refusal: BulletinError) -> None:
    """Answer the handshake with the refusal's JSON error; without the denial-response
    extension a server can only close (which the client sees as HTTP 403)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(refusal))
    else:
        await websocket.close(1008, refusal.message[:120])  # before accept: HTTP 403


async def _refuse_messages(
    websocket: WebSocket, reader: WebSocketReader, pump: asyncio.Task[None]
) -> None:
    """Wait for the client to leave; a client that sends anything is closed."""
    receiving = asyncio.ensure_future(websocket.receive())
    done, _pending = await asyncio.wait({receiving, pump}, return_when=asyncio.FIRST_COMPLETED)
    if receiving in done:
        message = receiving.result()
        if message["type"] != "websocket.disconnect":
            reader.close(CloseCode.READERS_DO_NOT_SEND, "this stream is one-way")
            await pump
    else:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiving


@router.get(
    SSE_ROUTE,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
        **error_responses(400, 403, 404, 409, 422),
        503: {
            "model": ErrorPublic,
            "description": "Not streaming now (`streams_stopped`: an operator stopped this "
            "blog's streams; `catching_up`: the database is away): retry after `Retry-After`.",
        },
    },
)
async def stream_sse(
    request: Request,
    services: ServicesDep,
    slug: str,
    since: SinceQuery = None,
    last_event_id: LastEventIdHeader = None,
) -> StreamingResponse:
    """Every event as Server-Sent Events (`id:` is the seq); honours `Last-Event-ID`."""
    hub, settings = services.hub, services.settings
    refusal = origin_refusal(settings, request.headers.getlist("origin"))
    if refusal is not None:
        raise refusal
    resume = parse_since(last_event_id) if last_event_id else parse_since(since)
    # Refuse an unknown blog or an impossible resume point with a JSON error, before streaming.
    await hub.check_resume(slug, resume)
    reader = SseReader(settings.reader_buffer_bytes)

    async def body() -> AsyncIterator[bytes]:
        attaching = asyncio.create_task(hub.attach(slug, reader, resume))
        attaching.add_done_callback(lambda task: _close_if_failed(task, reader))
        try:
            # Spread reconnects after a restart instead of having every reader return at once.
            async for chunk in reader.stream(retry_ms=random.randint(1000, 4000)):  # noqa: S311
                yield chunk
        finally:
            attaching.cancel()
            hub.detach(slug, reader)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _close_if_failed(task: asyncio.Task[None], reader: SseReader) -> None:
    if not task.cancelled() and task.exception() is not None:
        reader.close(CloseCode.INVALID_REQUEST, "could not resume")
