"""Conflict protection for edits: each entry and blog has an entity tag of its version, and a
write sent with `If-Match` goes through only while the tag is still current.

    ETag: "entry-12-v3"        If-Match: "entry-12-v3"   (or "*": whatever version it has)
    ETag: "blog-v2"            (a blog's: its URL names which)

Tags are strong and name the resource, so a tag of another entry never matches. Writes
without `If-Match` keep the old behaviour: the last write wins.
"""

import re
from dataclasses import dataclass
from typing import Any

from app.errors import BulletinError

# What the OpenAPI schema states for If-Match, and the parser checks with the same expression.
ENTITY_TAG_PATTERN = r'(?:W/)?"[\x21\x23-\x7e]*"'
IF_MATCH_PATTERN = (
    rf"^[ \t]*(?:\*|{ENTITY_TAG_PATTERN}(?:[ \t]*,[ \t]*{ENTITY_TAG_PATTERN})*)[ \t]*$"
)
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_TAG = re.compile(r'(W/)?("[\x21\x23-\x7e]*")')


class InvalidIfMatch(BulletinError):
    code = "invalid_if_match"


class PreconditionFailed(BulletinError):
    """412: the resource changed since the caller read it. Carries what it is now."""

    status = 412
    code = "precondition_failed"

    def __init__(self, message: str, *, current: dict[str, Any]) -> None:
        super().__init__(message)
        self.current = current

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["current"] = self.current
        return body


def entry_tag(entry_id: int, version: int) -> str:
    return f'"entry-{entry_id}-v{version}"'


def blog_tag(version: int) -> str:
    return f'"blog-v{version}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A parsed If-Match header: any version (`*`), or these strong tags."""

    any_version: bool
    tags: frozenset[str]

    def matches(self, current_tag: str) -> bool:
        return self.any_version or current_tag in self.tags


def parse_if_match(header: str | None) -> IfMatch | None:
    """None when no If-Match was sent; InvalidIfMatch (400) when it is not one."""
    if header is None:
        return None
    if not _IF_MATCH.fullmatch(header):
        raise InvalidIfMatch(
            'If-Match must be "*" or entity tags as the ETag header gave them, '
            'such as "entry-12-v3".'
        )
    if header.strip() == "*":
        return IfMatch(any_version=True, tags=frozenset())
    # A weak tag never matches for If-Match (RFC 9110 section 13.1.1): it is dropped.
    tags = frozenset(tag for weak, tag in _TAG.findall(header) if not weak)
    return IfMatch(any_version=False, tags=tags)
