"""The API's contract: request and response models (pydantic v2)."""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from app.webhooks.signing import check_signing_secret

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_RE = re.compile(SLUG_PATTERN)
MAX_BODY_CHARS = 100_000


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError("must be an IANA time zone such as 'Europe/London'") from error
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# Every time the API returns is UTC, whatever offset it was written with.
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
WebUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_web_url)]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SLUG_PATTERN)]
PlainText = Annotated[str, StringConstraints(max_length=1000)]
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
BlogStatus = Literal["live", "ended"]
EntryStatus = Literal["draft", "published"]
# What a stored entry can be: a deleted one is a tombstone.
EntryState = Literal["draft", "published", "deleted"]


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def is_slug(value: str) -> bool:
    return len(value) <= 100 and SLUG_RE.fullmatch(value) is not None


class RequestModel(BaseModel):
    """Requests refuse fields they do not know rather than dropping them."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: object) -> object:
        # PostgreSQL cannot store NUL in text; refuse it up front on every database.
        if _contains_nul(data):
            raise ValueError("text may not contain NUL characters")
        return data


# --- entries ---------------------------------------------------------------


class Author(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    role: Annotated[str, StringConstraints(max_length=100)] | None = None
    url: WebUrl | None = None


class Media(RequestModel):
    kind: Literal["image", "video", "embed"]
    url: WebUrl
    caption: PlainText = ""
    credit: Annotated[str, StringConstraints(max_length=300)] = ""
    alt: PlainText = ""


Headline = Annotated[str, StringConstraints(max_length=300)]
BodyHtml = Annotated[str, StringConstraints(max_length=MAX_BODY_CHARS)]


class EntryCreate(RequestModel):
    headline: Headline | None = None
    body: BodyHtml = Field("", description="HTML; sanitised to a safe allow-list.")
    authors: Annotated[list[Author], Field(max_length=20)] = []
    media: Annotated[list[Media], Field(max_length=20)] = []
    key_event: bool = False
    pinned: bool = Field(False, description="Pin on top of the blog; unpins any other entry.")
    status: EntryStatus = "published"
    published_at: AwareDatetime | None = Field(
        None, description="Defaults to now; set it to back-fill an earlier item."
    )

    @model_validator(mode="after")
    def _has_content(self) -> "EntryCreate":
        if not (self.headline or self.body.strip() or self.media):
            raise ValueError("an entry needs a headline, a body or media")
        return self


class EntryUpdate(RequestModel):
    """Only the fields sent are changed."""

    headline: Headline | None = None
    body: BodyHtml | None = None
    authors: Annotated[list[Author], Field(max_length=20)] | None = None
    media: Annotated[list[Media], Field(max_length=20)] | None = None
    key_event: bool | None = None
    pinned: bool | None = None
    status: EntryStatus | None = None
    published_at: AwareDatetime | None = None
    redact: bool = Field(
        False,
        description="Also rewrite what the log still shows of earlier versions of this entry "
        "to the version after this change (a legal or safety correction); an "
        "`entry.redacted` event follows.",
    )


class AuthorPublic(BaseModel):
    name: str
    role: str | None = None
    url: str | None = None


class MediaPublic(BaseModel):
    kind: str
    url: str
    caption: str = ""
    credit: str = ""
    alt: str = ""


class EntryPublic(BaseModel):
    id: int
    blog: str = Field(description="The blog's slug.")
    headline: str | None
    body: str = Field(description="Sanitised HTML.")
    authors: list[AuthorPublic]
    media: list[MediaPublic]
    key_event: bool
    pinned: bool
    status: EntryState
    published_at: UtcDatetime
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = Field(description="Starts at 1; bumped on every edit.")


class EntryTombstone(BaseModel):
    """What remains public of a deleted entry: enough to remove it from a page."""

    id: int
    blog: str
    status: Literal["deleted"] = "deleted"
    deleted_at: UtcDatetime


class EntriesPublic(BaseModel):
    items: list[EntryPublic]
    next_cursor: str | None = Field(description="Pass as `before` for the next, older page.")


# --- blogs -----------------------------------------------------------------


class BlogCreate(RequestModel):
    slug: Slug
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    summary: Annotated[str, StringConstraints(max_length=5000)] = ""
    status: BlogStatus = "live"
    timezone: TimeZoneName = "UTC"
    coverage_start: AwareDatetime | None = None
    coverage_end: AwareDatetime | None = None
    topics: Annotated[list[Topic], Field(max_length=20)] = []
    previous_slug: Slug | None = Field(None, description="The blog this one continues.")


class BlogUpdate(RequestModel):
    """Only the fields sent are changed; send null to clear `coverage_end` or `previous_slug`."""

    title: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
        | None
    ) = None
    summary: Annotated[str, StringConstraints(max_length=5000)] | None = None
    status: BlogStatus | None = None
    timezone: TimeZoneName | None = None
    coverage_start: AwareDatetime | None = None
    coverage_end: AwareDatetime | None = None
    topics: Annotated[list[Topic], Field(max_length=20)] | None = None
    previous_slug: Slug | None = None


class BlogPublic(BaseModel):
    slug: str
    title: str
    summary: str = Field(description="Sanitised HTML.")
    status: BlogStatus
    timezone: str
    coverage_start: UtcDatetime
    coverage_end: UtcDatetime | None
    topics: list[str]
    previous_slug: str | None
    pinned_entry_id: int | None
    head_seq: int = Field(description="The newest seq in this blog's change log.")
    created_at: UtcDatetime
    updated_at: UtcDatetime


class BlogsPublic(BaseModel):
    items: list[BlogPublic]
    next_cursor: str | None


# --- the change log --------------------------------------------------------

EventType = Literal[
    "entry.created",
    "entry.updated",
    "entry.deleted",
    "entry.pinned",
    "entry.unpinned",
    "entry.redacted",
    "blog.updated",
    "blog.ended",
]


class EventPublic(BaseModel):
    seq: int
    type: EventType
    blog: str = Field(description="The blog's slug.")
    entry: EntryPublic | EntryTombstone | None = Field(None, description="On entry.* events.")
    html: str | None = Field(None, description="The entry rendered as on the reader page.")
    key_event_html: str | None = Field(
        None, description="On entry.* events of a key event: its line in the key-events list."
    )
    details: BlogPublic | None = Field(None, description="On blog.* events: the blog as now.")
    redacted_seqs: list[int] | None = Field(
        None,
        description="On entry.redacted: the earlier events of the entry whose payloads were "
        "rewritten (to its tombstone, or to its current version); drop copies you keep of them.",
    )


class EventsPublic(BaseModel):
    blog: str
    head: int = Field(description="The newest seq in the log.")
    items: list[EventPublic]
    next_since: int = Field(description="Pass as `since` to continue; equals head when caught up.")


# --- tokens ----------------------------------------------------------------


class TokenCreate(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scope: Literal["publish", "admin"]


class TokenPublic(BaseModel):
    id: int
    name: str
    scope: str
    prefix: str = Field(
        description="The first characters of a generated secret; empty for BULLETIN_ADMIN_TOKEN."
    )
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class TokenCreated(TokenPublic):
    secret: str = Field(description="Shown once; only its hash is stored.")


IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


# --- errors ----------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable, e.g. 'invalid_input'.")
    message: str
    fields: dict[str, str] | None = Field(None, description="Per-field problems, by field path.")


class ErrorPublic(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` for the error statuses a route can answer with."""
    descriptions = {
        400: "Malformed request (bad JSON, cursor or header).",
        401: "Missing or unknown token.",
        403: "The token's scope does not allow this.",
        404: "No such blog or entry.",
        409: "Conflicts with the current state.",
        413: "The body is too large.",
        415: "The body is not JSON.",
        422: "A field is invalid; see `fields`.",
    }
    return {s: {"model": ErrorPublic, "description": descriptions[s]} for s in statuses}


# --- webhooks --------------------------------------------------------------


def _signing_secret(value: SecretStr) -> SecretStr:
    check_signing_secret(value.get_secret_value())
    return value


SigningSecret = Annotated[SecretStr, AfterValidator(_signing_secret)]
WebhookDescription = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]


class WebhookCreate(RequestModel):
    url: WebUrl = Field(description="Where each event is POSTed: a public http(s) address.")
    secret: SigningSecret = Field(
        description="A Standard Webhooks secret, `whsec_` + base64 of 24-64 random bytes; "
        "signs every delivery. Stored encrypted and never shown again."
    )
    description: WebhookDescription = ""


class WebhookUpdate(RequestModel):
    """Only the fields sent are changed; `active: true` re-enables a disabled webhook."""

    active: bool | None = None
    url: WebUrl | None = None
    secret: SigningSecret | None = Field(None, description="Replaces the signing secret.")
    description: WebhookDescription | None = None


class WebhookPublic(BaseModel):
    """A webhook and where its deliveries stand; the secret is never shown."""

    id: int
    blog: str = Field(description="The blog's slug.")
    url: str
    description: str
    active: bool
    disabled_reason: str | None = Field(description="Why it stopped: paused, or too many failures.")
    disabled_at: UtcDatetime | None
    delivered_seq: int = Field(description="Every event up to this seq has been delivered.")
    head_seq: int = Field(description="The newest seq in the blog's change log.")
    pending: int = Field(description="Events waiting to be delivered.")
    consecutive_failures: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: UtcDatetime | None
    last_success_at: UtcDatetime | None
    next_attempt_at: UtcDatetime | None = Field(
        description="When the next attempt is due; null when nothing is pending or it is disabled."
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime


class WebhookDeliveryPublic(BaseModel):
    """One attempt to deliver one event."""

    id: int
    seq: int
    message_id: str = Field(description="The `webhook-id` header: the same on every retry.")
    attempt: int = Field(description="1 for the first try of this seq, 2 for its first retry, …")
    delivered: bool
    status_code: int | None = Field(description="The receiver's status, if it answered.")
    error: str | None
    duration_ms: int
    attempted_at: UtcDatetime
