"""Page cursors: `before` values that name where an older page starts.

Used by the read side (queries.py) and by rendering (the reader page's "older" link).

An entry cursor is `<published_at as microseconds since 1970 UTC>_<entry id>`, a blog cursor
the blog's id, an audit cursor the audit record's id: ASCII digits a client can check
against the pattern in the OpenAPI schema.
Every value of that pattern names a place in the list, so none is refused; one beyond the
newest or oldest moment, or past the largest id, is read as the end of the list. Cursors
of the earlier, base64 form (still in old links to the reader page) are read too.
"""

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

from app.errors import BulletinError
from app.models import FIRST_YEAR, LAST_YEAR, MAX_INT

ENTRY_CURSOR_PATTERN = r"^-?[0-9]{1,18}_[0-9]{1,10}$"
BLOG_CURSOR_PATTERN = r"^[0-9]{1,10}$"
AUDIT_CURSOR_PATTERN = BLOG_CURSOR_PATTERN
_ENTRY_CURSOR = re.compile(r"(-?[0-9]{1,18})_([0-9]{1,10})")
_BLOG_CURSOR = re.compile(r"[0-9]{1,10}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EARLIEST = datetime(FIRST_YEAR - 1, 1, 1, tzinfo=UTC)
_LATEST = datetime(LAST_YEAR + 1, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


class InvalidCursor(BulletinError):
    code = "invalid_cursor"


def entry_cursor(published_at: datetime, entry_id: int) -> str:
    """The `before` cursor of the page that starts just after this entry (older ones)."""
    return f"{(published_at - _EPOCH) // _MICROSECOND}_{entry_id}"


def cursor_including(published_at: datetime, entry_id: int) -> str:
    """The `before` cursor of the page that starts with this entry."""
    return entry_cursor(published_at, entry_id + 1)


def decode_entry_cursor(cursor: str) -> tuple[datetime, int]:
    """(published_at, id): the page holds entries older than this pair."""
    match = _ENTRY_CURSOR.fullmatch(cursor)
    if match is None:
        return _decode_base64_entry_cursor(cursor)
    micros, number = int(match[1]), int(match[2])
    earliest, latest = (_micros(moment) for moment in (_EARLIEST, _LATEST))
    moment = _EPOCH + min(max(micros, earliest), latest) * _MICROSECOND
    return moment, min(number, MAX_INT)


def decode_blog_cursor(cursor: str) -> int:
    """The id the page of older blogs starts below."""
    if _BLOG_CURSOR.fullmatch(cursor):
        return min(int(cursor), MAX_INT)
    try:
        number = _ascii_number(_decode_base64(cursor))
        if not 0 < number <= MAX_INT:
            raise ValueError("not a cursor of ours")
        return number
    except ValueError as error:
        raise _invalid() from error


def encode_blog_cursor(blog_id: int) -> str:
    """The `before` cursor of the page of blogs older than this one."""
    return str(blog_id)


def decode_audit_cursor(cursor: str) -> int:
    """The id the page of older audit records starts below."""
    if not _BLOG_CURSOR.fullmatch(cursor):
        raise _invalid()
    return min(int(cursor), MAX_INT)


def encode_audit_cursor(record_id: int) -> str:
    return str(record_id)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _invalid() -> InvalidCursor:
    return InvalidCursor("The cursor is not one this server gave out.")


def _ascii_number(raw: str) -> int:
    # int() alone takes other scripts' digits, signs, spaces and underscores.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        raise ValueError("not a number of ours")
    return int(raw)


def _decode_base64(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise _invalid() from error


def _decode_base64_entry_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        published_at, entry_id = _decode_base64(cursor).split("|")
        moment, number = datetime.fromisoformat(published_at), _ascii_number(entry_id)
        if moment.tzinfo is None or not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise ValueError("not a cursor of ours")
        if not 0 < number <= MAX_INT:
            raise ValueError("not a cursor of ours")
        return moment.astimezone(UTC), number
    except ValueError as error:
        raise _invalid() from error
