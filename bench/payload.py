"""What a published message carries: its index and the publisher's send time, then filler.

Every server gets messages of the same size and shape. The stamp has fixed widths so a
reader finds it with one `bytes.find` and two slices, whatever JSON wraps it.
"""

import json
import random

MARKER = b"bench:"
_INDEX_DIGITS = 4
_STAMP_DIGITS = 19  # time.time_ns() has 19 digits until the year 2286
_TEXT = (
    "the minister said on tuesday that talks would resume after a short break while "
    "officials in the capital prepared a statement for reporters gathered outside the "
    "building where crowds had waited since early morning for news of the vote a spokesman "
    "added that no decision had been taken and that further updates were expected later "
    "today as the count continued in several districts across the north and west"
)
_WORDS = _TEXT.split()


def stamp(index: int, sent_ns: int) -> str:
    return f"bench:{index:0{_INDEX_DIGITS}d}:{sent_ns:0{_STAMP_DIGITS}d};"


def parse_stamp(payload: bytes) -> tuple[int, int] | None:
    """(index, sent_ns) of a benchmark message, or None for anything else (hello, heartbeat)."""
    start = payload.find(MARKER)
    if start < 0:
        return None
    at = start + len(MARKER)
    index = int(payload[at : at + _INDEX_DIGITS])
    at += _INDEX_DIGITS + 1
    return index, int(payload[at : at + _STAMP_DIGITS])


def filler(seed: int, length: int) -> str:
    """Prose-like text, different for every message: deflate sees realistic input."""
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def entry_body(index: int, sent_ns: int, pad: int) -> str:
    """The HTML body of a Bulletin entry (Bulletin wraps it in its own event JSON)."""
    return f"<p>{stamp(index, sent_ns)} {filler(index, pad)}</p>"


def peer_message(index: int, sent_ns: int, size: int) -> bytes:
    """A message shaped like Bulletin's event, exactly `size` bytes, for the peers."""

    def build(pad: int) -> bytes:
        event = {
            "seq": index + 1,
            "type": "entry.created",
            "blog": "bench",
            "entry": {"id": index + 1, "body": entry_body(index, sent_ns, pad)},
        }
        return json.dumps(event, separators=(",", ":")).encode()

    return build(max(0, size - len(build(0))))
