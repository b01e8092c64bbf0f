"""Validators of public reads: one blog version at one head seq names everything they show.

A leaf module (no web framework, no hub): the ETag and Last-Modified rules, and the
cache policy, as values the middleware, the routes and the memory of answers share.
"""

import email.utils
import hashlib
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app import __version__
from app.models import Blog

# Live blogs: a CDN asks again after a few seconds and may serve its copy meanwhile.
LIVE_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400"
# Ended blogs rarely change (a late correction shows within the hour).
ENDED_CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400, stale-if-error=86400"
PRIVATE_CACHE_CONTROL = "private, no-store"
# Refusals (an entry not yet published, a blog not yet made, a limit) hold for a moment: a
# shared cache keeps a 404 without Cache-Control for minutes (Varnish: 2), so none is kept.
ERROR_CACHE_POLICY = "no-store"
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')
ONE_SECOND = timedelta(seconds=1)
# How long after the end of the second of a change its date is sent and believed: more than
# the time from stamping a change to its commit, plus the clock skew between processes.
LAST_MODIFIED_DELAY = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class BlogVersion:
    """What every public read of a blog depends on, at one head seq."""

    seq: int
    live: bool
    changed_at: datetime
    # Tells this blog from an earlier one that had the same slug (a restored database).
    epoch: str

    @classmethod
    def of(cls, blog: Blog, changed_at: datetime) -> "BlogVersion":
        return cls(blog.head_seq, blog.status == "live", changed_at, epoch_of(blog))

    def names(self, blog: Blog) -> bool:
        """Whether this is the version of this very blog (not an earlier namesake) at its head."""
        return self.seq == blog.head_seq and self.epoch == epoch_of(blog)


def epoch_of(blog: Blog) -> str:
    return f"{blog.id}.{blog.created_at.timestamp()}"


@dataclass(frozen=True, slots=True)
class Representation:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str
    # The end of the second of the head change: a copy dated then or later is current.
    modified_by: datetime
    cache_control: str
    vary: str | None

    def dated(self, now: datetime) -> bool:
        """Whether Last-Modified may be sent: no change still unseen can be dated before it."""
        return now >= self.modified_by + LAST_MODIFIED_DELAY

    def headers(self, *, now: datetime, not_modified: bool = False) -> dict[str, str]:
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control}
        if self.vary:
            headers["Vary"] = self.vary
        # A 304 carries the ETag; Last-Modified is representation metadata of the 200.
        if not not_modified and self.dated(now):
            headers["Last-Modified"] = email.utils.format_datetime(self.modified_by, usegmt=True)
        return headers


def validators(version: BlogVersion, variant: str, *, vary: str | None = None) -> Validators:
    """The validators and cache policy of one variant of a blog at `version`."""
    digest = hashlib.sha256(f"{__version__}|{version.epoch}|{variant}".encode()).hexdigest()
    return Validators(
        etag=f'"{digest[:16]}-{version.seq}"',
        modified_by=version.changed_at.astimezone(UTC).replace(microsecond=0) + ONE_SECOND,
        cache_control=LIVE_CACHE_CONTROL if version.live else ENDED_CACHE_CONTROL,
        vary=vary,
    )


def is_current(
    if_none_match: str | None, if_modified_since: str | None, checked: Validators, now: datetime
) -> bool:
    """RFC 9110 section 13.2.2 for GET: If-None-Match decides when sent, else If-Modified-Since."""
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        # Weak comparison, as If-None-Match asks: a proxy that compressed may add W/.
        return checked.etag in _ENTITY_TAG.findall(if_none_match)
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # not an HTTP-date: ignored
    if since.tzinfo is None or since > now - LAST_MODIFIED_DELAY:
        return False  # a date later than any Last-Modified sent yet proves nothing
    return checked.modified_by <= since


def request_url(scope: MutableMapping[str, Any]) -> str:
    """The path and query as sent: what a CDN keys on, and what this process remembers."""
    query = scope.get("query_string", b"")
    return f"{scope['path']}?{query.decode('latin-1')}" if query else scope["path"]
