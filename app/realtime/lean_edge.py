"""The lean stream edge: after the handshake, a stream costs little more than its socket.

uvicorn keeps the listener, HTTP and the handshake (StreamProtocol in uvicorn_edge.py
answers it, refuses, limits and admits). Once a stream path is upgraded, the transport is
handed to a `LeanStream`: a small object with slots and no `websockets` ServerProtocol, no
ASGI queue and no timers of its own. One
`Sweep` per server sends the pings, drops readers whose pong is late and aborts closes the
peer never finished, for every stream at once.

What a reader may send is parsed here and nothing more: pings (answered with a pong),
pongs, the close handshake and, on a stream of several blogs, subscribe and unsubscribe
text messages (app/realtime/multiplex.py). Any other data message is refused with
READERS_DO_NOT_SEND, subscribe messages past the connection's budget with TOO_MANY_MESSAGES
(nothing it sent after either is acted on); unmasked frames, reserved bits, unknown opcodes
and malformed control frames close with 1002 (protocol error), a frame over ws_max_size
with 1009 (message too big), as RFC 6455 and the `websockets` library do.

A reader that offers permessage-deflate (every browser does) is answered with
`server_no_context_takeover` and `client_no_context_takeover`: each event is then compressed
once, into one frame that every such reader takes (Form.WEBSOCKET_DEFLATED), as nginx + nchan
do; no connection keeps a compressor or its window.
"""

import asyncio
import struct
import zlib
from typing import Any

from websockets.exceptions import ProtocolError
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Close

from app.limits import StreamPass
from app.realtime.channel import Receipt
from app.realtime.codes import CloseCode
from app.realtime.frames import DEFLATE_WINDOW_BITS, Form
from app.realtime.hub import Hub
from app.realtime.multiplex import NOT_A_READER_MESSAGE, Subscriptions

# Every ping is the same frame (server frames are unmasked): built once for all streams.
PING = b"\x89\x00"
# Control frames carry at most 125 bytes (RFC 6455, 5.5).
MAX_CONTROL_PAYLOAD = 125
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009
KEEPALIVE_TIMEOUT = 1011
# How long a close waits for the peer's own close frame (uvicorn's close_timeout).
CLOSE_SECONDS = 10.0
SWEEP_KEY = "bulletin.lean_sweep"
# RSV1: the message is compressed (permessage-deflate, RFC 7692).
COMPRESSED = 0x40
# What a stream answers a permessage-deflate offer with: no context carried from one message to
# the next either way, so one compressed frame per event serves every reader.
DEFLATE_ONCE = [
    ServerPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)
]


def close_frame(code: int, reason: str = "") -> bytes:
    """An unmasked close frame; the reason is cut to fit a control frame."""
    payload = struct.pack("!H", code) + reason.encode()[:120].decode(errors="ignore").encode()
    return struct.pack("!BB", 0x88, len(payload)) + payload


def unmask(payload: bytes, mask: bytes) -> bytes:
    """The payload of a masked (client) frame, as one integer XOR."""
    length = len(payload)
    if length == 0:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return value.to_bytes(length, "big")


class Sweep:
    """The one timer of every lean stream of a server.

    Each round pings every stream with the same prebuilt frame; a stream whose pong has not
    come back `ping_timeout` later (at most by the next round) is closed with 1011 and
    dropped. Streams that sent a close wait at most CLOSE_SECONDS for the peer's answer.
    The timer is armed only while there are streams, for the next of these moments.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ping_interval: float | None,
        ping_timeout: float | None,
    ) -> None:
        self.loop = loop
        self.ping_interval = ping_interval if ping_interval else None
        timeout = ping_timeout if ping_timeout else ping_interval
        # One ping in flight per stream: its pong is due before the next round.
        if self.ping_interval is not None and timeout is not None:
            timeout = min(timeout, self.ping_interval)
        self.ping_timeout = timeout
        # Dicts, in the order streams came: cheaper to walk than sets.
        self.streams: dict[LeanStream, None] = {}
        self.closing: dict[LeanStream, float] = {}
        self.next_ping: float | None = None
        self.pong_deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    def add(self, stream: "LeanStream") -> None:
        self.streams[stream] = None
        if self.next_ping is None and self.ping_interval is not None:
            self.next_ping = self.loop.time() + self.ping_interval
        self._arm()

    def remove(self, stream: "LeanStream") -> None:
        self.streams.pop(stream, None)
        self.closing.pop(stream, None)

    def closing_from_now(self, stream: "LeanStream") -> None:
        """`stream` sent its close: abort it if it is still open CLOSE_SECONDS from now."""
        if stream not in self.closing:
            self.closing[stream] = self.loop.time() + CLOSE_SECONDS
            self._arm()

    def _next_moment(self) -> float | None:
        moments = [m for m in (self.next_ping, self.pong_deadline) if m is not None]
        if self.closing:
            # Every close waits as long: the first one added is the first due.
            moments.append(next(iter(self.closing.values())))
        return min(moments) if moments else None

    def _arm(self) -> None:
        when = self._next_moment()
        if when is None:
            return
        if self.timer is not None:
            if self.timer.when() <= when:
                return
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._run)

    def _run(self) -> None:
        self.timer = None
        now = self.loop.time()
        for stream, deadline in list(self.closing.items()):
            if deadline > now:
                break
            del self.closing[stream]
            stream.abort()
        if self.pong_deadline is not None and now >= self.pong_deadline:
            self.pong_deadline = None
            for stream in [s for s in self.streams if s.awaiting_pong]:
                stream.keepalive_timeout()
        if self.next_ping is not None and now >= self.next_ping:
            for stream in self.streams:
                stream.ping()
            if self.ping_timeout is not None:
                self.pong_deadline = now + self.ping_timeout
            self.next_ping = now + self.ping_interval if self.ping_interval else None
        if not self.streams:
            # Nobody left to ping: the next stream starts a new round.
            self.next_ping = self.pong_deadline = None
        self._arm()


class LeanStream(asyncio.Protocol):
    """One reader's connection after the handshake: the hub's reader interface (write,
    close, wait_writable) on the transport, and a parser for what a reader may send."""

    __slots__ = (
        "awaiting_pong",
        "close_sent",
        "connections",
        "drained",
        "follows_many",
        "hub",
        "incoming",
        "limit_bytes",
        "max_size",
        "paused",
        "slug",
        "stream_pass",
        "subscriptions",
        "sweep",
        "transport",
    )
    form = Form.WEBSOCKET_FRAME
    # The reserved bit a reader may set on a data message: none without permessage-deflate.
    compressed_bit = 0

    def __init__(
        self,
        transport: asyncio.Transport,
        hub: Hub,
        slug: str | None,
        *,
        limit_bytes: int,
        max_size: int,
        sweep: Sweep,
        connections: set[Any],
        stream_pass: StreamPass | None,
    ) -> None:
        self.transport = transport
        self.hub = hub
        self.slug = slug
        self.limit_bytes = limit_bytes
        self.max_size = max_size
        self.sweep = sweep
        self.connections = connections
        self.stream_pass = stream_pass
        self.incoming: bytes | None = None
        self.close_sent = False
        self.awaiting_pong = False
        self.paused = False
        self.drained: asyncio.Future[None] | None = None
        # A stream of several blogs (slug None) follows them through its subscriptions.
        self.follows_many = slug is None
        self.subscriptions: Subscriptions | None = None

    # --- the hub's reader interface -----------------------------------------------

    def write(self, data: bytes | str, receipt: Receipt | None = None) -> bool:
        """Write a prebuilt frame now; refuse, closing with RESUME, when the unsent bytes
        would pass the limit: a reader that far behind reconnects with its seq."""
        transport = self.transport
        if self.close_sent or transport.is_closing():
            return False
        if transport.get_write_buffer_size() + len(data) > self.limit_bytes:
            self.close(CloseCode.RESUME, "too far behind: reconnect with your last seq")
            return False
        # These readers take WebSocket frames: the hub only ever gives them bytes.
        transport.write(data)  # type: ignore[arg-type]
        return True

    def close(self, code: CloseCode, reason: str) -> None:
        """Start the close handshake; the sweep aborts the stream if the peer never answers."""
        if self.close_sent or self.transport.is_closing():
            return
        self.transport.write(close_frame(code, reason))
        self.close_sent = True
        self.sweep.closing_from_now(self)

    async def wait_writable(self) -> bool:
        if self.paused and not self.transport.is_closing():
            if self.drained is None:
                self.drained = asyncio.get_running_loop().create_future()
            await self.drained
        return not (self.close_sent or self.transport.is_closing())

    # --- the sweep ----------------------------------------------------------------

    def ping(self) -> None:
        if not (self.close_sent or self.awaiting_pong):
            self.awaiting_pong = True
            self.transport.write(PING)

    def keepalive_timeout(self) -> None:
        """No pong in time: the peer is gone or not reading, so nothing needs flushing."""
        if not self.close_sent:
            self.transport.write(close_frame(KEEPALIVE_TIMEOUT, "keepalive ping timeout"))
            self.close_sent = True
        self.transport.abort()

    def abort(self) -> None:
        self.transport.abort()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown (the hub has usually closed the stream already)."""
        if not self.close_sent:
            self.transport.write(close_frame(CloseCode.SERVICE_RESTART))
            self.close_sent = True
        self.transport.close()
        self.sweep.closing_from_now(self)

    # --- what readers send --------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        buffer = self.incoming + data if self.incoming else data
        self.incoming = None
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            opcode = first & 0x0F
            reserved = first & 0x70
            if reserved and not (reserved == self.compressed_bit and opcode in (0x1, 0x2)):
                return self.fail(PROTOCOL_ERROR, "reserved bits must be 0")
            if not second & 0x80:
                return self.fail(PROTOCOL_ERROR, "incorrect masking")
            if opcode >= 0x8:
                if opcode > 0xA:
                    return self.fail(PROTOCOL_ERROR, f"invalid opcode: {opcode}")
                if not first & 0x80:
                    return self.fail(PROTOCOL_ERROR, "fragmented control frame")
            elif opcode > 0x2:
                return self.fail(PROTOCOL_ERROR, f"invalid opcode: {opcode}")
            length, head = second & 0x7F, 6
            if length == 126:
                if size - position < 4:
                    break
                length, head = int.from_bytes(buffer[position + 2 : position + 4], "big"), 8
            elif length == 127:
                if size - position < 10:
                    break
                length, head = int.from_bytes(buffer[position + 2 : position + 10], "big"), 14
            if opcode >= 0x8 and length > MAX_CONTROL_PAYLOAD:
                return self.fail(PROTOCOL_ERROR, "control frame too long")
            if length > self.max_size:
                limit = f"frame with {length} bytes exceeds limit of {self.max_size} bytes"
                return self.fail(MESSAGE_TOO_BIG, limit)
            end = position + head + length
            if size < end:
                break
            if opcode < 0x8:
                if self.close_sent:
                    pass  # the rest of what it sent before it saw our close
                elif opcode == 0x0:
                    return self.fail(PROTOCOL_ERROR, "unexpected continuation frame")
                elif self.subscriptions is None:
                    self.close(CloseCode.READERS_DO_NOT_SEND, "this stream is one-way")
                else:
                    mask = buffer[position + head - 4 : position + head]
                    message = unmask(buffer[position + head : end], mask)
                    if first & COMPRESSED:
                        message = inflate_alone(message, self.max_size)
                        first &= ~COMPRESSED
                    # Whole text messages only: a subscribe is far smaller than one frame.
                    if first != 0x81:
                        self.close(CloseCode.READERS_DO_NOT_SEND, NOT_A_READER_MESSAGE)
                    elif refusal := self.subscriptions.receive(message):
                        self.close(*refusal)
            elif opcode == 0xA:
                self.awaiting_pong = False
            else:
                mask = buffer[position + head - 4 : position + head]
                payload = unmask(buffer[position + head : end], mask)
                if opcode == 0x9:
                    self.answer_ping(payload)
                    if self.transport.is_closing():
                        return
                else:
                    return self.answer_close(payload)
            position = end
        if position < size:
            # At most one partial frame, of at most max_size bytes.
            self.incoming = bytes(buffer[position:])

    def answer_ping(self, payload: bytes) -> None:
        """Answer a reader's ping, within the same buffer limit as the events it is sent."""
        if self.close_sent:
            return
        pong = struct.pack("!BB", 0x8A, len(payload)) + payload
        if self.transport.get_write_buffer_size() + len(pong) > self.limit_bytes:
            # It pings and never reads what it is sent: drop it at once, buffer and all.
            self.transport.abort()
            return
        self.transport.write(pong)

    def answer_close(self, payload: bytes) -> None:
        """The peer's close: echo it (unless it answers ours) and end the connection."""
        try:
            Close.parse(payload)
        except ProtocolError as error:
            return self.fail(PROTOCOL_ERROR, str(error))
        except UnicodeDecodeError:
            return self.fail(INVALID_DATA, "invalid UTF-8 in the close reason")
        if not self.close_sent:
            self.transport.write(struct.pack("!BB", 0x88, len(payload)) + payload)
            self.close_sent = True
        self.transport.close()
        # A peer that stopped reading would hold the flush open: the sweep ends it.
        self.sweep.closing_from_now(self)

    def fail(self, code: int, reason: str) -> None:
        """Close at once for what a reader must not send; what follows it is not read."""
        if not self.close_sent:
            self.transport.write(close_frame(code, reason))
            self.close_sent = True
        self.transport.close()
        self.sweep.closing_from_now(self)

    # --- the transport's callbacks ------------------------------------------------

    def eof_received(self) -> None:
        pass

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drained is not None:
            if not self.drained.done():  # its replay may have been cancelled meanwhile
                self.drained.set_result(None)
            self.drained = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.sweep.remove(self)
        self.close_sent = True
        if self.stream_pass is not None:
            self.stream_pass.release()
            self.stream_pass = None
        if self.subscriptions is not None:
            self.subscriptions.leave()
        elif self.slug is not None:
            self.hub.detach(self.slug, self)
        # A replay waiting for the buffer to drain must not wait for ever.
        self.resume_writing()
        if exc is None:
            self.transport.close()


class DeflatedLeanStream(LeanStream):
    """A lean stream that negotiated permessage-deflate: it takes each event's one
    compressed frame, and a reader's data message may come compressed (then refused)."""

    __slots__ = ()
    form = Form.WEBSOCKET_DEFLATED
    compressed_bit = COMPRESSED


def inflate_alone(message: bytes, max_size: int) -> bytes:
    """A reader's compressed message (a browser compresses its subscribes once deflate is
    agreed), inflated on its own: client_no_context_takeover was agreed, so nothing carries
    over. b"" (not a reader's message) when it is not deflate or inflates past max_size."""
    inflater = zlib.decompressobj(-DEFLATE_WINDOW_BITS)
    try:
        message = inflater.decompress(message + b"\x00\x00\xff\xff", max_size + 1)
    except zlib.error:
        return b""
    return b"" if len(message) > max_size or inflater.unconsumed_tail else message


def deflates_once(extensions: list[Any]) -> bool:
    """Whether the negotiated extensions let this stream take the one deflated frame."""
    return any(
        isinstance(extension, PerMessageDeflate)
        and extension.local_no_context_takeover
        # A reader may ask for a smaller window than the frame was compressed with.
        and (extension.local_max_window_bits or 15) >= DEFLATE_WINDOW_BITS
        for extension in extensions
    )
