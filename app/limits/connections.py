"""What a connection may cost before it is a request: a bounded head, deadlines, a cap.

uvicorn's httptools protocol buffers the request line and headers without limit and
waits for ever on a head or a body that never completes. This subclass of it:

- refuses a request head (request line plus headers, the WebSocket handshake too) past
  `max_request_head_bytes` with 414 (the line) or 431 (the headers), and closes;
- closes a connection whose head has not arrived within `request_head_seconds` of its
  first byte or of the connection opening (408), and one whose body stops arriving for
  `request_body_seconds` (408);
- answers 503 and closes a new connection when this process already holds
  `max_connections` connections (streams included: each holds a file descriptor), and
  refuses a new stream with 503 past `Settings.stream_cap`, a little below it, so that
  readers never take the connections a publish, a page or a probe needs (WebSocket
  handshakes here; SSE in app/limits/middleware.py, which finds the connections under
  CONNECTIONS_KEY in the lifespan state);
- at a graceful shutdown, has the hub end every stream first (SSE responses finish
  cleanly, WebSockets get 1012), so the server does not wait its timeout for them.

Answers are the usual JSON error body, written straight to the transport: no
application code runs for them. Settings come from the lifespan state (`app_state`),
as the stream edge's do.
"""

import asyncio
import functools
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.config import Settings
from app.errors import BulletinError, HeadersTooLarge, RequestTimeout, ServerBusy, UrlTooLong
from app.serving import require_audited_versions

require_audited_versions(__file__)

# After a refusal, what the client still sends is read and dropped for this long, so that
# it reads the answer instead of a reset (closing a socket with unread input resets it).
LINGER_SECONDS = 2.0
# Where the lifespan state keeps this process's open connections, for the SSE check.
CONNECTIONS_KEY = "bulletin.connections"


@functools.cache
def _settings_from_environment() -> Settings:
    """For an app that keeps no Bulletin services in its lifespan state (a benchmark peer)."""
    return Settings()


STREAMS_FULL = ServerBusy("The server is at its limit of streams; retry shortly.")


def streams_full(connections: set[Any], settings: Settings) -> bool:
    """Whether a new stream, already among `connections`, is one past the stream cap."""
    return len(connections) > settings.stream_cap


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        services = app_state.get("services")
        settings = services.settings if services is not None else _settings_from_environment()
        self.max_head_bytes = settings.max_request_head_bytes
        self.head_seconds = settings.request_head_seconds
        self.body_seconds = settings.request_body_seconds
        self.max_connections = settings.connection_cap
        self.settings = settings
        app_state.setdefault(CONNECTIONS_KEY, server_state.connections)
        self.metrics = services.metrics if services is not None else None
        self.head_bytes = 0
        self.reading_head = True
        self.header_seen = False
        self.deadline: asyncio.TimerHandle | None = None
        self.lingering = False

    # --- the connection ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # Counted before this one joins: at the cap, this one is refused.
        busy = len(self.connections) >= self.max_connections
        super().connection_made(transport)
        if busy:
            self.refuse(ServerBusy("The server is at its connection limit; retry shortly."))
            return
        self.arm(self.head_seconds, "The request head did not arrive in time.")

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # refused: dropped unread
        if not self.reading_head:
            if self.deadline is not None:
                # Body bytes arrived: the body's idle deadline starts again.
                self.arm(self.body_seconds, "The request body stopped arriving.")
            super().data_received(data)
            return
        # Parsed first (one read's worth at most), then judged: a read may carry the end of
        # a head and the start of its body, and only a head still incomplete is too long.
        self.head_bytes += len(data)
        if self.deadline is None:
            self.arm(self.head_seconds, "The request head did not arrive in time.")
        super().data_received(data)
        if self.reading_head and self.head_bytes > self.max_head_bytes:
            limit = f"at most {self.max_head_bytes} bytes"
            if self.header_seen:
                self.refuse(HeadersTooLarge(f"The request headers may be {limit}."))
            else:
                self.refuse(UrlTooLong(f"The request line may be {limit}."))

    # --- the parser's callbacks ---------------------------------------------------

    def on_message_begin(self) -> None:
        self.reading_head = True
        self.header_seen = False
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_seen = True
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        self.arm(self.body_seconds, "The request body stopped arriving.")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # The next request on this connection starts its own head (keep-alive waits first).
        self.reading_head = True
        self.head_bytes = 0
        super().on_response_complete()

    def shutdown(self) -> None:
        """uvicorn's first step of a graceful shutdown, on every connection: streams end
        now, with the restart signal, instead of holding the shutdown until its timeout."""
        services = self.app_state.get("services")
        if services is not None:
            services.hub.close_readers()
        super().shutdown()

    def handle_websocket_upgrade(self) -> None:
        if streams_full(self.connections, self.settings):
            self.refuse(STREAMS_FULL)
            return
        # The connection becomes a stream: its own limits and pings apply from here.
        self.disarm()
        super().handle_websocket_upgrade()

    # --- refusing -----------------------------------------------------------------

    def arm(self, seconds: float, message: str) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(seconds, self.time_out, message)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def time_out(self, message: str) -> None:
        # Armed only while a head or a body is arriving: once a request is complete, the
        # answer (however long it streams) is the application's to give.
        self.deadline = None
        self.refuse(RequestTimeout(message))

    def refuse(self, error: BulletinError) -> None:
        """Answer with the error and close, unless an answer is already under way."""
        self.disarm()
        transport = self.transport
        if transport.is_closing() or self.lingering:
            return
        if self.cycle is not None and self.cycle.response_started:
            transport.close()
            return
        if self.metrics is not None:
            self.metrics.connection_refusals.labels(reason=error.code).inc()
        body = json.dumps(error.body()).encode()
        head = [
            STATUS_LINE[error.status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        head += [b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in error.headers().items()]
        transport.write(b"".join([*head, b"\r\n", body]))
        if self.cycle is not None:
            # The route (if any) sees a disconnect instead of waiting for the rest.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if not transport.can_write_eof():
            transport.close()
            return
        # Half-close: the answer and then end-of-stream reach the client; its input is
        # dropped until it closes too (the transport then closes) or the linger ends.
        transport.write_eof()
        self.lingering = True
        # A refused connection is on its way out: it no longer counts against the cap.
        self.connections.discard(self)
        self.deadline = self.loop.call_later(LINGER_SECONDS, transport.abort)
