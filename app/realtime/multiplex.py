"""Several blogs on one stream connection, each with its own `since`.

A browser with many tabs, or an editor with many blogs open, holds one connection:
`/api/v1/streams/ws?blogs=a:41,b` (WebSocket) or `/api/v1/streams/sse?blogs=a:41,b`
(Server-Sent Events). Over WebSocket a reader may also send, as JSON text messages,
`{"subscribe": "slug", "since": 41}` and `{"unsubscribe": "slug"}`; anything else closes the
connection with READERS_DO_NOT_SEND, as on a single blog's stream. A subscribe with `since`
costs the hub a replay from the log, so each connection has a budget of such messages (a
burst, then a steady rate); past it the connection is closed with TOO_MANY_MESSAGES.

The connection is one reader of the hub in each blog's channel, so every event's frame is
still built once for all readers: events already name their blog, and this connection's
`hello` and heartbeats name it too. Every subscription is answered with a `hello` carrying
the blog's head: at once without `since`, after the replay with it. A blog that cannot be
followed (missing, a reset log, a malformed `since`) gets an `error` message with the
close code a single blog's stream would have closed with; the others go on. The connection
itself closes only for what concerns it all: it fell behind (RESUME), the server restarts,
or it sent what it may not, or faster than it may.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from app.api.deps import ServicesDep, services_of
from app.errors import BulletinError, NotFound, SinceAheadOfHead, Unavailable
from app.models import MAX_INT
from app.paths import MULTI_STREAMS_PREFIX, SSE_ROUTE, WEBSOCKET_ROUTE
from app.realtime.codes import CloseCode
from app.realtime.frames import error_frame, error_payload, hello_frame
from app.realtime.hub import Hub, Reader
from app.realtime.readers import SseReader, WebSocketReader
from app.realtime.streams import InvalidSince, origin_refusal, parse_since, refuse_handshake
from app.schemas import RATE_LIMITED, error_responses

logger = logging.getLogger("bulletin.streams")
router = APIRouter(prefix=MULTI_STREAMS_PREFIX, tags=["streams"], responses=RATE_LIMITED)

# Enough for an editor's desk; a connection is cheap, the blogs on it are what cost.
MAX_BLOGS_PER_CONNECTION = 20
# A subscribe message is a slug and a seq: anything longer is not one.
MAX_MESSAGE_BYTES = 512
# Subscribe and unsubscribe messages a connection may send at once: a client handing its
# connection over between tabs unsubscribes and subscribes again every blog it follows.
MESSAGE_BURST = 2 * MAX_BLOGS_PER_CONNECTION
# And then per second, for as long as it likes: a reader opening and closing blogs by hand
# never comes near it, while a flood is held to two replays a second per connection (and
# connections per address are limited).
MESSAGES_PER_SECOND = 2.0
NOT_A_READER_MESSAGE = "a reader sends only subscribe and unsubscribe messages"
TOO_MANY_MESSAGES_REASON = "too many subscribe and unsubscribe messages: reconnect later"


class InvalidBlogList(BulletinError):
    code = "invalid_blogs"


BLOGS_DESCRIPTION = (
    "The blogs to follow, comma-separated, each `slug` or `slug:since` "
    f"(at most {MAX_BLOGS_PER_CONNECTION})."
)
BlogsQuery = Annotated[
    str | None, Query(description=BLOGS_DESCRIPTION, max_length=MAX_BLOGS_PER_CONNECTION * 120)
]
RequiredBlogsQuery = Annotated[
    str,
    Query(description=BLOGS_DESCRIPTION, min_length=1, max_length=MAX_BLOGS_PER_CONNECTION * 120),
]


def parse_blog_list(raw: str | None) -> list[tuple[str, int | None]]:
    """`a:41,b` as [("a", 41), ("b", None)]; raises InvalidBlogList or InvalidSince."""
    if raw is None or raw == "":
        return []
    blogs: dict[str, int | None] = {}
    for item in raw.split(","):
        slug, _, since = item.partition(":")
        if not slug or slug in blogs:
            raise InvalidBlogList(f"blogs lists each blog once, as slug or slug:since: {item!r}.")
        blogs[slug] = parse_since(since)
    if len(blogs) > MAX_BLOGS_PER_CONNECTION:
        raise InvalidBlogList(f"A connection follows at most {MAX_BLOGS_PER_CONNECTION} blogs.")
    return list(blogs.items())


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    subscribe: str = Field(min_length=1, max_length=200)
    since: int | None = Field(None, ge=0, le=MAX_INT)


class Unsubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    unsubscribe: str = Field(min_length=1, max_length=200)


READER_MESSAGE: TypeAdapter[Subscribe | Unsubscribe] = TypeAdapter(Subscribe | Unsubscribe)

# How a connection is to be closed: its code and reason.
StreamClose = tuple[CloseCode, str]


class MessageBudget:
    """A token bucket: `burst` messages at once, then `per_second` more as `clock` runs."""

    def __init__(self, burst: int, per_second: float, clock: Callable[[], float]) -> None:
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        self.tokens = float(burst)
        self.counted_at = clock()

    def spend(self) -> bool:
        """Take one message out of the budget; False, taking nothing, when none is left."""
        now = self.clock()
        earned = (now - self.counted_at) * self.per_second
        self.tokens = min(float(self.burst), self.tokens + earned)
        self.counted_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Subscriptions:
    """The blogs one connection follows: each attached to the hub on its own, so one blog's
    replay or refusal never holds up or closes another."""

    def __init__(self, hub: Hub, reader: Reader) -> None:
        self.hub = hub
        self.reader = reader
        # By slug: the attach under way, or done (then the reader is in the blog's channel).
        self.attaching: dict[str, asyncio.Task[None]] = {}
        self.budget = MessageBudget(MESSAGE_BURST, MESSAGES_PER_SECOND, hub.clock)

    def subscribe(self, slug: str, since: int | None) -> None:
        """Follow the blog from `since`; following it again starts again from the new since."""
        self.unsubscribe(slug)
        if len(self.attaching) >= MAX_BLOGS_PER_CONNECTION:
            limit = f"a connection follows at most {MAX_BLOGS_PER_CONNECTION} blogs"
            self.refuse(slug, CloseCode.INVALID_REQUEST, limit)
            return
        task = asyncio.get_running_loop().create_task(self._attach(slug, since))
        self.attaching[slug] = task

    def unsubscribe(self, slug: str) -> None:
        task = self.attaching.pop(slug, None)
        if task is not None:
            task.cancel()
            self.hub.detach(slug, self.reader)

    def leave(self) -> None:
        """The connection ended: out of every channel."""
        for slug in list(self.attaching):
            self.unsubscribe(slug)

    def receive(self, message: str | bytes) -> StreamClose | None:
        """Act on what the reader sent; or, when it may not send it, do nothing and return
        how to close the connection."""
        if len(message) > MAX_MESSAGE_BYTES:
            return CloseCode.READERS_DO_NOT_SEND, NOT_A_READER_MESSAGE
        try:
            parsed = READER_MESSAGE.validate_json(message)
        except ValidationError:
            return CloseCode.READERS_DO_NOT_SEND, NOT_A_READER_MESSAGE
        if not self.budget.spend():
            self.hub.metrics.count_refusal("stream_messages")
            return CloseCode.TOO_MANY_MESSAGES, TOO_MANY_MESSAGES_REASON
        if isinstance(parsed, Subscribe):
            self.subscribe(parsed.subscribe, parsed.since)
        else:
            self.unsubscribe(parsed.unsubscribe)
        return None

    def refuse(self, slug: str, code: CloseCode, reason: str) -> None:
        """Tell the reader this blog is not followed, with the code a blog's stream closes with."""
        self.reader.write(error_frame(self.reader.form, error_payload(slug, code, reason)))

    async def _attach(self, slug: str, since: int | None) -> None:
        try:
            await self.hub.attach(slug, self.reader, since)
            channel = self.hub.channel(slug)
            if since is not None and channel is not None:
                # Every subscription is answered: after its replay, the head it goes on from
                # (nothing awaited since the reader joined the channel, so none slips between).
                form = self.reader.form
                self.reader.write(hello_frame(form, channel.last_seq, slug))
            return
        except NotFound as error:
            code, reason = CloseCode.BLOG_NOT_FOUND, error.message
        except SinceAheadOfHead as error:
            code, reason = CloseCode.RESET, error.message
        except InvalidSince as error:
            code, reason = CloseCode.INVALID_REQUEST, error.message
        except Unavailable as error:
            logger.warning("a reader of %s could not be attached: %s", slug, error.message)
            code, reason = CloseCode.SERVICE_RESTART, error.message
        except Exception:
            logger.exception("attaching a reader of %s failed", slug)
            code, reason = CloseCode.INTERNAL_ERROR, "internal error"
        if self.attaching.get(slug) is asyncio.current_task():
            del self.attaching[slug]
        self.refuse(slug, code, reason)


@router.websocket(WEBSOCKET_ROUTE)
async def stream_blogs_websocket(websocket: WebSocket, blogs: BlogsQuery = None) -> None:
    """Several blogs' events on one WebSocket; subscribe and unsubscribe by message."""
    services = services_of(websocket)
    hub, settings = services.hub, services.settings
    refusal: BulletinError | None = origin_refusal(settings, websocket.headers.getlist("origin"))
    try:
        initial = parse_blog_list(blogs)
    except BulletinError as error:
        refusal = refusal or error
    if refusal is not None:
        await refuse_handshake(websocket, refusal)
        return
    await websocket.accept()
    reader = WebSocketReader(websocket, settings.reader_buffer_bytes)
    reader.follows_many = True
    subscriptions = Subscriptions(hub, reader)
    pump = asyncio.create_task(reader.pump())
    try:
        for slug, since in initial:
            subscriptions.subscribe(slug, since)
        await _take_subscriptions(websocket, subscriptions, pump)
    finally:
        subscriptions.leave()
        reader.close(CloseCode.GOING_AWAY, "bye")
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


async def _take_subscriptions(
    websocket: WebSocket, subscriptions: Subscriptions, pump: asyncio.Task[None]
) -> None:
    """Act on subscribe and unsubscribe messages until the client leaves; anything else
    closes the connection."""
    while True:
        receiving = asyncio.ensure_future(websocket.receive())
        done, _pending = await asyncio.wait({receiving, pump}, return_when=asyncio.FIRST_COMPLETED)
        if receiving not in done:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiving
            return
        message = receiving.result()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            refusal: StreamClose | None = (CloseCode.READERS_DO_NOT_SEND, NOT_A_READER_MESSAGE)
        else:
            refusal = subscriptions.receive(text)
        if refusal is not None:
            subscriptions.reader.close(*refusal)
            await pump
            return


@router.get(
    SSE_ROUTE,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
        **error_responses(400, 403, 422),
    },
)
async def stream_blogs_sse(
    request: Request, services: ServicesDep, blogs: RequiredBlogsQuery
) -> StreamingResponse:
    """Several blogs' events as Server-Sent Events; resume each with `slug:since` in `blogs`
    (Last-Event-ID cannot say which blog it is for, and is not read)."""
    hub, settings = services.hub, services.settings
    refusal = origin_refusal(settings, request.headers.getlist("origin"))
    if refusal is not None:
        raise refusal
    initial = parse_blog_list(blogs)
    reader = SseReader(settings.reader_buffer_bytes)
    reader.follows_many = True

    async def body() -> AsyncIterator[bytes]:
        subscriptions = Subscriptions(hub, reader)
        for slug, since in initial:
            subscriptions.subscribe(slug, since)
        try:
            # Spread reconnects after a restart instead of having every reader return at once.
            async for chunk in reader.stream(retry_ms=random.randint(1000, 4000)):  # noqa: S311
                yield chunk
        finally:
            subscriptions.leave()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
