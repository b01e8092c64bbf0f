"""The two forms of a sealed announcement (app/realtime/broker/__init__.py): the second
carries the commit time and the publishing request's id to the other processes, and the
first, which processes of earlier versions send, is still opened."""

import hashlib
import hmac

import pytest

from app.realtime.broker import MAC_HEX, Announcement, Seal

KEY = b"this installation's broker key"
PAYLOAD = b'{"seq":7,"type":"entry.created","blog":"vote-night","html":"<p>Polls\\nclose</p>"}'


def first_form(blog: str, blog_id: int, seq: int, payload: bytes) -> bytes:
    """An announcement as a process of an earlier version wrote it."""
    head = b"%s\n%d\n%d\n" % (blog.encode(), blog_id, seq)
    mac = hmac.new(KEY, head + payload, hashlib.sha256).hexdigest()[:MAC_HEX].encode()
    return mac + b"\n" + head + payload


def test_the_second_form_carries_the_commit_time_and_the_request_id() -> None:
    seal = Seal(KEY)
    sent = Announcement(
        "vote-night", 3, 7, PAYLOAD, committed_at=1_796_221_280.123456, request_id="desk-4711"
    )
    assert seal.decode(seal.encode(sent)) == sent


def test_an_announcement_without_them_keeps_the_first_form() -> None:
    seal = Seal(KEY)
    plain = Announcement("vote-night", 3, 7, PAYLOAD)
    assert seal.encode(plain) == first_form("vote-night", 3, 7, PAYLOAD)
    assert seal.decode(seal.encode(plain)) == plain


def test_a_message_from_an_earlier_version_is_still_opened() -> None:
    opened = Seal(KEY).decode(first_form("vote-night", 3, 7, PAYLOAD))
    assert opened == Announcement("vote-night", 3, 7, PAYLOAD)
    assert (opened.committed_at, opened.request_id) == (0.0, "")


def test_a_request_id_that_would_break_the_form_is_left_out() -> None:
    seal = Seal(KEY)
    sent = Announcement("vote-night", 3, 7, PAYLOAD, committed_at=5.0, request_id="a\nb")
    opened = seal.decode(seal.encode(sent))
    assert opened == Announcement("vote-night", 3, 7, PAYLOAD, committed_at=5.0, request_id="")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda raw: raw.replace(b"desk-4711", b"desk-4712"),
        lambda raw: raw.replace(b"1796221280.123456", b"1796221281.123456"),
        lambda raw: raw.replace(b"\n~2\n", b"\n"),
    ],
    ids=["request id", "commit time", "form marker"],
)
def test_a_second_form_message_changed_on_the_way_is_refused_and_counted(tamper) -> None:
    refusals: list[None] = []
    seal = Seal(KEY, refused=lambda: refusals.append(None))
    sent = Announcement(
        "vote-night", 3, 7, PAYLOAD, committed_at=1_796_221_280.123456, request_id="desk-4711"
    )
    assert seal.decode(tamper(seal.encode(sent))) is None
    assert len(refusals) == 1
