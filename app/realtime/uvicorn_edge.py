"""Bulletin's WebSocket edge: stream connections handled by the protocol, without ASGI.

uvicorn lets an application supply its WebSocket protocol class (`Config(ws=...)`).
This one is uvicorn's sans-I/O implementation, except for stream paths
(`/api/v1/blogs/{slug}/ws`, and `/api/v1/streams/ws` for several blogs on one connection,
app/realtime/multiplex.py): there it completes the handshake itself and
registers the connection with the hub directly. There is no ASGI task and no
coroutine per reader; the hub writes each event's prebuilt frame straight to
the transport, and a reader whose unsent bytes pass its limit is closed with
RESUME instead of being waited for. Every other WebSocket path goes through
the application as usual.

This reaches into uvicorn's protocol state (`conn`, `transport`, `close_sent`,
the keepalive timers), so uvicorn and websockets are pinned, importing this module
with other versions fails, and tests/realtime/test_uvicorn_edge_contract.py lists
every inherited name it uses (every stream test also runs through it).
"""

import asyncio
import contextvars
import json
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame
from websockets.server import ServerProtocol

from app.errors import BulletinError
from app.limits import RateLimits, Refusal, StreamPass
from app.logs import REQUEST_ID_HEADER, accepted_request_id, request_id
from app.paths import MULTI_WEBSOCKET_STREAM, WEBSOCKET_STREAM
from app.realtime.channel import Receipt
from app.realtime.codes import CloseCode
from app.realtime.frames import Form
from app.realtime.hub import Hub
from app.realtime.multiplex import NOT_A_READER_MESSAGE, Subscriptions, parse_blog_list
from app.realtime.streams import attach_websocket_reader, origin_refusal
from app.services import Services
from app.serving import require_audited_versions

require_audited_versions(__file__)


class FrameWriter(Protocol):
    """A stream connection of either edge, as `write_frame` uses it."""

    transport: asyncio.Transport
    close_sent: bool
    limit_bytes: int

    def close(self, code: CloseCode, reason: str) -> None: ...


def write_frame(stream: FrameWriter, data: bytes | str) -> bool:
    """Write a prebuilt frame to the stream now; refuse, closing it with RESUME, when its
    unsent bytes would pass its limit: a reader that far behind reconnects with its seq."""
    transport = stream.transport
    if stream.close_sent or transport.is_closing():
        return False
    if transport.get_write_buffer_size() + len(data) > stream.limit_bytes:
        stream.close(CloseCode.RESUME, "too far behind: reconnect with your last seq")
        return False
    # These readers take Form.WEBSOCKET_FRAME: the hub only ever gives them bytes.
    transport.write(data)  # type: ignore[arg-type]
    return True


class StreamProtocol(WebSocketsSansIOProtocol):
    form = Form.WEBSOCKET_FRAME

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Broadcasts are framed once for every reader: never negotiate per-connection deflate.
        self.conn = ServerProtocol(extensions=[], max_size=config.ws_max_size, logger=self.logger)
        self.stream_slug: str | None = None
        # On a stream of several blogs, instead of stream_slug.
        self.subscriptions: Subscriptions | None = None
        self.follows_many = False
        self.stream_pass: StreamPass | None = None
        self.limit_bytes = 0

    def streaming(self) -> bool:
        """Whether this connection is a stream (of one blog or several), not an app's socket."""
        return self.stream_slug is not None or self.subscriptions is not None

    # --- the stream path --------------------------------------------------------

    def handle_connect(self, event: Any) -> None:
        raw_path, _, query = event.path.partition("?")
        path = unquote(raw_path)
        match = WEBSOCKET_STREAM.match(path)
        services: Services | None = self.app_state.get("services")
        if (match is None and path != MULTI_WEBSOCKET_STREAM) or services is None:
            super().handle_connect(event)
            return
        # None: the stream of several blogs, named in the query.
        slug = unquote(match.group(1)) if match is not None else None
        # No ASGI middleware runs here: the stream takes its request id itself, echoes it in
        # the handshake's answer and keeps it for every line written while it is attached
        # (the tasks made from here on run in a context of their own that holds it).
        rid = accepted_request_id(event.headers.get(REQUEST_ID_HEADER))
        context = contextvars.copy_context()
        context.run(request_id.set, rid)
        context.run(self.connect_stream, event, services, slug, query, rid)

    def connect_stream(
        self, event: Any, services: Services, slug: str | None, query: str, rid: str
    ) -> None:
        hub = services.hub
        self.request = event
        self.response = self.conn.accept(event)
        self.response.headers[REQUEST_ID_HEADER] = rid
        self.handshake_initiated = True
        if self.response.status_code == 101:
            # Before the limits: a page that may not stream spends no address's budget.
            refusal: BulletinError | None = origin_refusal(
                services.settings, event.headers.get_all("Origin")
            )
            if refusal is None and slug is None:
                refusal = blog_list_refusal(query)
            if refusal is not None:
                self.refuse(refusal)
        rate_limits = services.rate_limits
        if rate_limits is None or self.response.status_code != 101:
            self.open_stream(hub, slug, query)
            return
        task = self.loop.create_task(self.admit(rate_limits, event, hub, slug, query))
        self.tasks.add(task)
        task.add_done_callback(self.on_task_complete)

    async def admit(
        self, rate_limits: RateLimits, event: Any, hub: Hub, slug: str | None, query: str
    ) -> None:
        """Ask the public limits first; an address over them gets an HTTP 429 handshake."""
        admission = await rate_limits.admit_stream(
            self.client_host(event), event.headers.get("Authorization")
        )
        if self.disconnected or self.transport.is_closing():
            # The peer left, or the server began to stop, while the limits were asked.
            if isinstance(admission, StreamPass):
                admission.release()
            return
        if isinstance(admission, Refusal):
            self.refuse(admission.error())
        else:
            self.stream_pass = admission
        self.open_stream(hub, slug, query)

    def refuse(self, error: BulletinError) -> None:
        """Make the handshake's answer the error's JSON, with its status and headers."""
        self.response = self.conn.reject(error.status, json.dumps(error.body()))
        del self.response.headers["Content-Type"]
        self.response.headers["Content-Type"] = "application/json"
        for name, value in error.headers().items():
            self.response.headers[name] = value

    def client_host(self, event: Any) -> str | None:
        """The client's address as ASGI routes see it: uvicorn's proxy-header rule applied."""
        host = self.client[0] if self.client else None
        # With proxy_headers, uvicorn wraps the app in this middleware, outermost.
        proxy = self.app if isinstance(self.app, ProxyHeadersMiddleware) else None
        if proxy is not None and host in proxy.trusted_hosts:
            forwarded = event.headers.get_all("X-Forwarded-For")
            if forwarded:
                forwarded_host, _port = proxy.trusted_hosts.get_trusted_client_address(
                    ", ".join(forwarded)
                )
                if forwarded_host:
                    return forwarded_host
        return host

    def answer_handshake(self) -> bool:
        """Send the handshake response; True if it upgraded (101), else the connection ends."""
        self.handshake_complete = True
        self.conn.send_response(self.response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.response.status_code != 101:
            self.close_sent = True
            self.transport.close()
            return False
        return True

    def open_stream(self, hub: Hub, slug: str | None, query: str) -> None:
        """Send the handshake response; on 101, register the connection with the hub
        (`slug` None: with each blog the query names)."""
        if not self.answer_handshake():
            return
        self.limit_bytes = self.app_state["services"].settings.reader_buffer_bytes
        # Backpressure (pause_writing) starts at half the limit; replays wait for it to clear.
        self.transport.set_write_buffer_limits(
            high=self.limit_bytes // 2, low=self.limit_bytes // 4
        )
        self.start_keepalive()
        if slug is None:
            self.follows_many = True
            self.subscriptions = follow_blogs(hub, self, query)
            return
        self.stream_slug = slug
        since = parse_qs(query).get("since", [None])[-1]
        task = self.loop.create_task(attach_websocket_reader(hub, self.stream_slug, self, since))
        self.tasks.add(task)
        task.add_done_callback(self.on_task_complete)

    # --- the hub's reader interface -----------------------------------------------

    def write(self, data: bytes | str, receipt: Receipt | None = None) -> bool:
        """Write a prebuilt frame now (the hub counts its receipt); refuse (and close with
        RESUME) past the buffer limit."""
        return write_frame(self, data)

    def close(self, code: CloseCode, reason: str) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(code, reason.encode()[:120].decode(errors="ignore"))
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        # The peer should answer with its own close frame; stop waiting after close_timeout.
        # Abort, not close: a peer that stopped reading would hold a close's flush for ever.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    async def wait_writable(self) -> bool:
        await self.writable.wait()
        return not (self.close_sent or self.transport.is_closing())

    # --- what readers send --------------------------------------------------------

    def handle_text(self, event: Frame) -> None:
        if self.subscriptions is not None:
            if self.close_sent:
                return  # the rest of what it sent before it saw our close
            # Whole messages only: a subscribe is far smaller than one frame.
            if not event.fin:
                self.close(CloseCode.READERS_DO_NOT_SEND, NOT_A_READER_MESSAGE)
            elif refusal := self.subscriptions.receive(bytes(event.data)):
                self.close(*refusal)
        elif self.stream_slug is None:
            super().handle_text(event)
        else:
            self.close(CloseCode.READERS_DO_NOT_SEND, "this stream is one-way")

    def handle_bytes(self, event: Frame) -> None:
        if not self.streaming():
            super().handle_bytes(event)
        else:
            self.close(CloseCode.READERS_DO_NOT_SEND, "this stream is one-way")

    def handle_ping(self) -> None:
        """Answer a reader's ping, within the same buffer limit as the events it is sent."""
        if not self.streaming():
            super().handle_ping()
            return
        pong = b"".join(self.conn.data_to_send())
        if self.transport.get_write_buffer_size() + len(pong) > self.limit_bytes:
            # It pings and never reads what it is sent: drop it at once, buffer and all.
            self.transport.abort()
            return
        self.transport.write(pong)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        if self.streaming():
            # No pong in time: the peer is gone or not reading, so nothing needs flushing.
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.stream_pass is not None:
            self.stream_pass.release()
        if self.subscriptions is not None:
            self.subscriptions.leave()
        if self.stream_slug is not None:
            services: Services | None = self.app_state.get("services")
            if services is not None:
                services.hub.detach(self.stream_slug, self)


def blog_list_refusal(query: str) -> BulletinError | None:
    """Why the stream of several blogs refuses this query's `blogs`, if it does."""
    try:
        parse_blog_list(parse_qs(query).get("blogs", [None])[-1])
    except BulletinError as error:
        return error
    return None


def follow_blogs(hub: Hub, reader: Any, query: str) -> Subscriptions:
    """Subscribe a stream of several blogs to each blog its query names."""
    subscriptions = Subscriptions(hub, reader)
    for slug, since in parse_blog_list(parse_qs(query).get("blogs", [None])[-1]):
        subscriptions.subscribe(slug, since)
    return subscriptions
