"""Wire forms of one event, each built once and written as-is to every reader."""

import json
import struct
import zlib
from dataclasses import dataclass
from enum import Enum

_TEXT_FIN = 0x81
# FIN, RSV1 (permessage-deflate: this message is compressed) and text.
_COMPRESSED_TEXT_FIN = 0xC1
# What a sync flush ends with; RFC 7692 (7.2.1) has the sender leave it out.
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"
# The LZ77 window of the one compressor per event (zlib's largest, what browsers inflate).
DEFLATE_WINDOW_BITS = 15


class Form(Enum):
    """The bytes a reader takes: ASGI text, a ready WebSocket frame, or an SSE message."""

    TEXT = "text"
    WEBSOCKET_FRAME = "websocket_frame"
    # For readers that negotiated permessage-deflate without server context takeover: one
    # compressed frame per event serves all of them (no compressor per connection).
    WEBSOCKET_DEFLATED = "websocket_deflated"
    SSE = "sse"


# Forms the hub writes straight to a transport: a write taken is a write delivered.
DIRECT_FORMS = frozenset({Form.WEBSOCKET_FRAME, Form.WEBSOCKET_DEFLATED})


def websocket_text_frame(payload: bytes) -> bytes:
    """A complete, unmasked WebSocket text frame: identical for every reader of a server."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _TEXT_FIN, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", _TEXT_FIN, 126, length)
    else:
        header = struct.pack("!BBQ", _TEXT_FIN, 127, length)
    return header + payload


def websocket_deflated_frame(payload: bytes) -> bytes:
    """The payload as one compressed text message, from a fresh compressor: it refers to no
    earlier message, so any reader that negotiated server_no_context_takeover inflates it.
    Uncompressed if deflate would not make it smaller (a reader takes either, RFC 7692)."""
    compressor = zlib.compressobj(wbits=-DEFLATE_WINDOW_BITS)
    compressed = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    compressed = compressed.removesuffix(_SYNC_FLUSH_TAIL)
    if len(compressed) >= len(payload):
        return websocket_text_frame(payload)
    frame = bytearray(websocket_text_frame(compressed))
    frame[0] = _COMPRESSED_TEXT_FIN
    return bytes(frame)


def sse_message(seq: int, event_type: str, payload: bytes) -> bytes:
    # JSON has no raw newlines, so the payload is always one `data:` line.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event_type.encode(), payload)


@dataclass(frozen=True, slots=True)
class Framed:
    """One message in every form a reader may take, each built once."""

    text: str
    websocket_frame: bytes
    sse: bytes

    def frame(self, form: Form) -> bytes | str:
        """The message as a reader of this form takes it (small ones go uncompressed)."""
        if form in DIRECT_FORMS:
            return self.websocket_frame
        if form is Form.SSE:
            return self.sse
        return self.text


class Outgoing:
    """One event of the log on its way to readers: each form framed once, when first needed
    (a form no reader takes is never built), and shared by every reader of that form."""

    __slots__ = ("_frames", "event_type", "payload", "redacts", "seq")

    def __init__(self, seq: int, payload: bytes) -> None:
        self.seq = seq
        self.payload = payload
        self.event_type: str = json.loads(payload)["type"]
        # Earlier payloads of an entry were rewritten: copies of them kept in memory are stale.
        self.redacts = self.event_type == "entry.redacted"
        self._frames: dict[Form, bytes | str] = {}

    @classmethod
    def build(cls, seq: int, payload: bytes) -> "Outgoing":
        return cls(seq, payload)

    def frame(self, form: Form) -> bytes | str:
        framed = self._frames.get(form)
        if framed is None:
            if form is Form.WEBSOCKET_FRAME:
                framed = websocket_text_frame(self.payload)
            elif form is Form.WEBSOCKET_DEFLATED:
                framed = websocket_deflated_frame(self.payload)
            elif form is Form.SSE:
                framed = sse_message(self.seq, self.event_type, self.payload)
            else:
                framed = self.payload.decode()
            self._frames[form] = framed
        return framed


def control_payload(message_type: str, seq: int, blog: str | None = None) -> bytes:
    """`hello` and `heartbeat` messages: not events, they carry the head seq (and, on a
    connection that follows several blogs, the blog's slug)."""
    if blog is None:
        return b'{"type":"%s","seq":%d}' % (message_type.encode(), seq)
    return b'{"type":"%s","blog":%s,"seq":%d}' % (
        message_type.encode(),
        json.dumps(blog).encode(),
        seq,
    )


def error_payload(blog: str, code: int, reason: str) -> bytes:
    """One blog of a connection that follows several could not be followed: the close code a
    single-blog stream would have been closed with, for that blog alone."""
    return json.dumps(
        {"type": "error", "blog": blog, "code": code, "reason": reason}, separators=(",", ":")
    ).encode()


@dataclass(frozen=True, slots=True)
class Heartbeat(Framed):
    """A heartbeat carrying the head seq. Its SSE form is a named event, not a comment:
    scripts see it, so a browser can tell a dead stream; it has no `id:`, so it leaves
    EventSource's Last-Event-ID at the last real event."""

    @classmethod
    def at(cls, seq: int, blog: str | None = None) -> "Heartbeat":
        payload = control_payload("heartbeat", seq, blog)
        return cls(
            text=payload.decode(),
            websocket_frame=websocket_text_frame(payload),
            sse=b"event: heartbeat\ndata: %s\n\n" % payload,
        )


def replay_frame(form: Form, payload: bytes, seq: int) -> bytes | str:
    """One event for one reader (replay, not the broadcast path): uncompressed, as a
    compressor per replayed event would cost far more than the bytes it saves."""
    if form is Form.TEXT:
        return payload.decode()
    if form in DIRECT_FORMS:
        return websocket_text_frame(payload)
    return Outgoing(seq, payload).frame(Form.SSE)


def hello_frame(form: Form, head: int, blog: str | None = None) -> bytes | str:
    """The first message of a reader without `since`: the head it starts from."""
    payload = control_payload("hello", head, blog)
    if form is Form.SSE:
        # With the head as its id, an EventSource that reconnects resumes from there.
        return sse_message(head, "hello", payload)
    return replay_frame(form, payload, head)


def error_frame(form: Form, payload: bytes) -> bytes | str:
    """An `error` message for one reader. In SSE it has no `id:`, so it moves no resume point,
    and is named `blog.error`: EventSource keeps `error` for its own connection failures."""
    if form is Form.SSE:
        return b"event: blog.error\ndata: %s\n\n" % payload
    return replay_frame(form, payload, 0)
