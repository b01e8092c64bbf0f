"""The newsroom stream: a blog's public events and its members' private ones, as SSE.

`GET /api/v1/blogs/{slug}/newsroom/sse`, for the blog's members (contributor and up), with
the session cookie or a token. It carries what the public stream carries, with the same
`id:` (the seq) and the same resume (`Last-Event-ID`, `?since=`), and between them the
private notes of app/realtime/newsroom.py, which have no `id:`. A contributor's stream
carries the notes of its own entries only; an editor's (and an owner's, an admin's) all.

An open stream checks its credentials every BULLETIN_HEARTBEAT_SECONDS: once its session or
token no longer works (signed out, expired, revoked, user disabled) or its user is no longer
a member, it sends `newsroom.ended` and closes; a change of role applies from then on.

SSE only: the page needs nothing but server-to-client messages, EventSource sends the
session cookie by itself, and Bulletin's own WebSocket edge serves public streams without
ASGI (cookies, CSRF rules and principals live in the ASGI app).
"""

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.api.deps import (
    PrincipalDep,
    ServicesDep,
    check_origin,
    client_address,
    session_cookie_name,
)
from app.errors import Forbidden, Unauthorised
from app.limits.addresses import bearer_secret
from app.paths import STREAMS_PREFIX
from app.people import principals
from app.people.permissions import PrivateView, private_view
from app.people.roles import Principal
from app.queries import find_blog
from app.realtime.codes import CloseCode
from app.realtime.newsroom import Watch
from app.realtime.readers import SseReader
from app.realtime.streams import LastEventIdHeader, SinceQuery, parse_since
from app.schemas import RATE_LIMITED, error_responses
from app.services import Services

logger = logging.getLogger("bulletin.newsroom")
router = APIRouter(prefix=STREAMS_PREFIX + "/newsroom", tags=["newsroom"], responses=RATE_LIMITED)


def _forbidden(slug: str) -> Forbidden:
    return Forbidden(f"The newsroom stream needs the contributor role on blog '{slug}'.")


async def _current_view(request: Request, services: Services, slug: str) -> PrivateView | None:
    """What the stream's credentials may see of the blog now (None: nothing any more)."""
    principal: Principal | None = None
    address = client_address(request)
    secret = bearer_secret(request.headers.get("authorization"))
    if secret is not None:
        token = await services.tokens.authenticate(secret)
        if token is not None:
            async with services.database.read_session() as session:
                with contextlib.suppress(Unauthorised):  # its user was disabled
                    principal = await principals.for_token(session, token, address)
    else:
        name = session_cookie_name(request, services.settings.public_base_url)
        signed_in = await services.sessions.authenticate(
            request.cookies.get(name, ""), address, touch=False
        )
        principal = signed_in.principal if signed_in is not None else None
    if principal is None:
        return None
    async with services.database.read_session() as session:
        blog = await find_blog(session, slug)
    return private_view(principal, blog)


@router.get(
    "/sse",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The newsroom stream."},
        **error_responses(400, 401, 403, 404, 409, 422),
    },
)
async def stream_newsroom_sse(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    slug: str,
    since: SinceQuery = None,
    last_event_id: LastEventIdHeader = None,
) -> StreamingResponse:
    """The blog's events and its private changes, as SSE, for its members only."""
    settings, hub, newsroom = services.settings, services.hub, services.newsroom
    if principal.via == "session":
        # A GET changes nothing, but a page elsewhere has no business reading this.
        check_origin(request, settings.public_base_url, required=False)
    async with services.database.read_session() as session:
        blog = await find_blog(session, slug)
    view = private_view(principal, blog)
    if view is None:
        raise _forbidden(slug)
    role = principal.role_on(blog.id) or "contributor"
    resume = parse_since(last_event_id) if last_event_id else parse_since(since)
    await hub.check_resume(slug, resume)
    reader = SseReader(settings.reader_buffer_bytes)
    # A member's desk, not a reader's page: left out of readers now and of receipts.
    reader.counted = False
    ended: list[str] = []

    async def keep_checking(watch: Watch) -> None:
        while True:
            await asyncio.sleep(settings.heartbeat_seconds)
            try:
                now = await _current_view(request, services, slug)
            except Exception as error:  # the database away: the stream stays as it was
                logger.warning("checking a newsroom reader of %s failed: %s", slug, error)
                continue
            if now is None:
                ended.append("Your session or token no longer gives you this blog's newsroom.")
                reader.close(CloseCode.GOING_AWAY, "credentials ended")
                return
            watch.writer_id = now.writer_id

    async def body() -> AsyncIterator[bytes]:
        # Private notes first (the hello says they flow), then the public part.
        watch = newsroom.watch(slug, blog.id, reader, view.writer_id, role)
        attaching = asyncio.create_task(hub.attach(slug, reader, resume))
        attaching.add_done_callback(lambda task: _close_if_failed(task, reader))
        checking = asyncio.create_task(keep_checking(watch))
        try:
            async for chunk in reader.stream(retry_ms=random.randint(1000, 4000)):  # noqa: S311
                yield chunk
            if ended:
                message = json.dumps({"type": "newsroom.ended", "message": ended[0]})
                yield b"event: newsroom.ended\ndata: %s\n\n" % message.encode()
        finally:
            attaching.cancel()
            checking.cancel()
            hub.detach(slug, reader)
            newsroom.unwatch(slug, reader)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        # Private: no cache or proxy keeps any of it.
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _close_if_failed(task: asyncio.Task[None], reader: SseReader) -> None:
    if not task.cancelled() and task.exception() is not None:
        reader.close(CloseCode.INVALID_REQUEST, "could not resume")
