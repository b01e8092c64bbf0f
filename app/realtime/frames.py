"""Wire forms of one event, each built once and written as-is to every reader."""

import json
import struct
from dataclasses import dataclass

_TEXT_FIN = 0x81


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


def sse_message(seq: int, event_type: str, payload: bytes) -> bytes:
    # JSON has no raw newlines, so the payload is always one `data:` line.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event_type.encode(), payload)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event in every form a reader may need."""

    seq: int
    payload: bytes
    text: str
    websocket_frame: bytes
    sse: bytes

    @classmethod
    def build(cls, seq: int, payload: bytes) -> "Outgoing":
        event_type = json.loads(payload)["type"]
        return cls(
            seq=seq,
            payload=payload,
            text=payload.decode(),
            websocket_frame=websocket_text_frame(payload),
            sse=sse_message(seq, event_type, payload),
        )


def control_payload(message_type: str, seq: int) -> bytes:
    """`hello` and `heartbeat` messages: not events, they carry the head seq."""
    return b'{"type":"%s","seq":%d}' % (message_type.encode(), seq)
