"""The stream endpoints: WebSocket and Server-Sent Events for one blog's change log."""

import asyncio
import contextlib
import random
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse

from app.errors import BulletinError, NotFound
from app.realtime.codes import CloseCode
from app.realtime.hub import Hub, SinceAheadOfHead
from app.realtime.readers import SseReader, WebSocketReader
from app.schemas import MAX_INT, error_responses

router = APIRouter(prefix="/api/v1/blogs/{slug}", tags=["streams"])


class InvalidSince(BulletinError):
    code = "invalid_since"


def parse_since(raw: str | None) -> int | None:
    """A resume point: a non-negative integer seq, or nothing."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > MAX_INT:
        raise InvalidSince(f"since must be a seq (a non-negative integer), not {raw[:40]!r}.")
    return int(raw)


@router.websocket("/ws")
async def stream_websocket(websocket: WebSocket, slug: str) -> None:
    """Every event of the blog as one JSON text message each; resume with `?since=SEQ`."""
    hub: Hub = websocket.app.state.hub
    settings = websocket.app.state.settings
    await websocket.accept()
    reader = WebSocketReader(websocket, settings.reader_buffer_bytes)
    try:
        await hub.attach(slug, reader, parse_since(websocket.query_params.get("since")))
    except NotFound as error:
        await websocket.close(CloseCode.BLOG_NOT_FOUND, error.message[:120])
        return
    except SinceAheadOfHead as error:
        await websocket.close(CloseCode.RESET, error.message[:120])
        return
    except InvalidSince as error:
        await websocket.close(CloseCode.INVALID_REQUEST, error.message[:120])
        return
    pump = asyncio.create_task(reader.pump())
    try:
        await _refuse_messages(websocket, reader, pump)
    finally:
        hub.detach(slug, reader)
        reader.close(CloseCode.GOING_AWAY, "bye")
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


async def _refuse_messages(
    websocket: WebSocket, reader: WebSocketReader, pump: asyncio.Task
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
    "/sse",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
        **error_responses(400, 404, 409, 422),
    },
)
async def stream_sse(
    request: Request,
    slug: str,
    since: Annotated[str | None, Query(description="Resume after this seq")] = None,
    last_event_id: Annotated[
        str | None, Header(description="Set by EventSource on reconnect")
    ] = None,
) -> StreamingResponse:
    """Every event as Server-Sent Events (`id:` is the seq); honours `Last-Event-ID`."""
    hub: Hub = request.app.state.hub
    settings = request.app.state.settings
    resume = parse_since(last_event_id) if last_event_id else parse_since(since)
    reader = SseReader(settings.reader_buffer_bytes)
    await hub.attach(slug, reader, resume)

    async def body():
        try:
            # Spread reconnects after a restart instead of having every reader return at once.
            async for chunk in reader.stream(retry_ms=random.randint(1000, 4000)):  # noqa: S311
                yield chunk
        finally:
            hub.detach(slug, reader)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
