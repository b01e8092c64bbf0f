"""Page cursors: opaque `before` values that name where an older page starts.

Used by the read side (queries.py) and by rendering (the reader page's "older" link).
"""

import base64
import binascii
from datetime import datetime

from app.errors import BulletinError
from app.models import MAX_INT


class InvalidCursor(BulletinError):
    code = "invalid_cursor"


def entry_cursor(published_at: datetime, entry_id: int) -> str:
    """The `before` cursor of the page that starts just after this entry (older ones)."""
    return _encode(f"{published_at.isoformat()}|{entry_id}")


def cursor_including(published_at: datetime, entry_id: int) -> str:
    """The `before` cursor of the page that starts with this entry."""
    return entry_cursor(published_at, entry_id + 1)


def _encode(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursor("The cursor is not one this server gave out.") from error


def decode_entry_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        published_at, entry_id = _decode(cursor).split("|")
        moment, number = datetime.fromisoformat(published_at), int(entry_id)
        if moment.tzinfo is None or not 0 < number <= MAX_INT:
            raise ValueError("not a cursor of ours")
        return moment, number
    except ValueError as error:
        raise InvalidCursor("The cursor is not one this server gave out.") from error


def decode_blog_cursor(cursor: str) -> int:
    try:
        number = int(_decode(cursor))
        if not 0 < number <= MAX_INT:
            raise ValueError("not a cursor of ours")
        return number
    except ValueError as error:
        raise InvalidCursor("The cursor is not one this server gave out.") from error


def encode_blog_cursor(blog_id: int) -> str:
    """The `before` cursor of the page of blogs older than this one."""
    return _encode(str(blog_id))
