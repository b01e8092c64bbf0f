"""Bulletin's WebSocket edge: the protocol class uvicorn runs for every WebSocket.

uvicorn lets an application supply its WebSocket protocol class (`Config(ws=...)`).
This one is uvicorn's sans-I/O implementation, except for stream paths
(`/api/v1/blogs/{slug}/ws`, and `/api/v1/streams/ws` for several blogs on one connection,
app/realtime/multiplex.py): there it answers the handshake itself (the origin check, the
rate limits, the refusals as JSON), then hands the socket to a `LeanStream`
(app/realtime/lean_edge.py), and this object, with its `websockets` ServerProtocol, is
dropped. There is no ASGI task and no coroutine per reader. Every other WebSocket path goes
through the application as usual.

This reaches into uvicorn's protocol state (`conn`, `transport`, `connections`, the
handshake flags), so uvicorn and websockets are pinned, importing this module with other
versions fails, and tests/realtime/test_uvicorn_edge.py lists every inherited name it uses
(every stream test also runs through it).
"""

import asyncio
import contextvars
import json
from typing import Any
from urllib.parse import parse_qs, unquote

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.server import ServerProtocol

from app.errors import BulletinError
from app.limits import RateLimits, Refusal, StreamPass
from app.logs import REQUEST_ID_HEADER, accepted_request_id, request_id
from app.paths import MULTI_WEBSOCKET_STREAM, WEBSOCKET_STREAM
from app.realtime.hub import Hub
from app.realtime.lean_edge import (
    DEFLATE_ONCE,
    SWEEP_KEY,
    DeflatedLeanStream,
    LeanStream,
    Sweep,
    deflates_once,
)
from app.realtime.multiplex import Subscriptions, parse_blog_list
from app.realtime.streams import attach_websocket_reader, origin_refusal
from app.services import Services
from app.serving import require_audited_versions

require_audited_versions(__file__)


class StreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, but stream paths are answered here and handed over."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Broadcasts are framed once for every reader: never negotiate per-connection deflate
        # (stream paths get the one deflate that fits that, in handle_connect). Served with
        # uvicorn_options, uvicorn's own ServerProtocol already offers none.
        if self.conn.available_extensions:
            self.conn = ServerProtocol(
                extensions=[], max_size=config.ws_max_size, logger=self.logger
            )
        self.stream_pass: StreamPass | None = None
        # Once upgraded: the stream that has the transport, where its callbacks go.
        self.lean_stream: LeanStream | None = None

    # --- the stream path --------------------------------------------------------

    def handle_connect(self, event: Any) -> None:
        raw_path, _, query = event.path.partition("?")
        path = unquote(raw_path)
        match = WEBSOCKET_STREAM.match(path)
        services: Services | None = self.app_state.get("services")
        if (match is None and path != MULTI_WEBSOCKET_STREAM) or services is None:
            super().handle_connect(event)
            return
        # Other WebSocket paths keep uvicorn's setting (no per-connection compression).
        self.conn.available_extensions = DEFLATE_ONCE
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
        """Send the handshake response; on 101, hand the connection over to a LeanStream
        (`slug` None: a stream of each blog the query names)."""
        if not self.answer_handshake():
            return
        services = self.app_state["services"]
        limit_bytes = services.settings.reader_buffer_bytes
        # Backpressure (pause_writing) starts at half the limit; replays wait for it to clear.
        self.transport.set_write_buffer_limits(high=limit_bytes // 2, low=limit_bytes // 4)
        deflated = deflates_once(self.conn.extensions)
        # Its compressor and window are never used: every frame is built once, by the hub.
        self.conn.extensions = []
        sweep = self.app_state.get(SWEEP_KEY)
        if sweep is None:
            sweep = Sweep(self.loop, self.config.ws_ping_interval, self.config.ws_ping_timeout)
            self.app_state[SWEEP_KEY] = sweep
        stream = (DeflatedLeanStream if deflated else LeanStream)(
            self.transport,
            hub,
            slug,
            limit_bytes=limit_bytes,
            max_size=self.config.ws_max_size,
            sweep=sweep,
            connections=self.connections,
            stream_pass=self.stream_pass,
        )
        # The stream releases the pass and leaves the hub itself, when its connection ends.
        self.stream_pass = None
        self.connections.discard(self)
        # uvicorn's shutdown calls shutdown() on every member; the set is typed for its own.
        self.connections.add(stream)  # type: ignore[arg-type]
        sweep.add(stream)
        self.lean_stream = stream
        # Called from data_received, the HTTP protocol sets this protocol on the transport
        # just after; hand over once it has (until then, data_received forwards).
        self.loop.call_soon(self.transport.set_protocol, stream)
        if slug is None:
            stream.subscriptions = follow_blogs(hub, stream, query)
            return
        since = parse_qs(query).get("since", [None])[-1]
        task = self.loop.create_task(attach_websocket_reader(hub, slug, stream, since))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- until the transport is handed over ------------------------------------------

    def data_received(self, data: bytes) -> None:
        stream = self.lean_stream
        if stream is not None:
            stream.data_received(data)
        else:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        stream = self.lean_stream
        if stream is not None:
            stream.connection_lost(exc)
            return
        super().connection_lost(exc)
        # Admitted, then gone before the handshake's answer.
        if self.stream_pass is not None:
            self.stream_pass.release()
            self.stream_pass = None

    def pause_writing(self) -> None:
        if self.lean_stream is not None:
            self.lean_stream.pause_writing()
        super().pause_writing()

    def resume_writing(self) -> None:
        if self.lean_stream is not None:
            self.lean_stream.resume_writing()
        super().resume_writing()


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
