"""The API's contract: request and response models (pydantic v2)."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    MISSING,
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from app.i18n.languages import known_languages, parse_language
from app.models import FIRST_YEAR, LAST_YEAR, MAX_INT
from app.people.roles import Role
from app.webhooks.signing import MAX_SECRET_BYTES, MIN_SECRET_BYTES, check_signing_secret

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_RE = re.compile(SLUG_PATTERN)
MAX_BODY_CHARS = 100_000

# What the patterns below say, the validators check with the same expressions: every
# request the OpenAPI schema allows is accepted and every other one refused. The patterns
# use only syntax that Python, ECMAScript and Rust regular expressions read alike.

# Whitespace as pydantic's strip_whitespace removes it (Unicode White_Space).
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK_PATTERN = f"[^{WHITESPACE}]"
NOT_BLANK = re.compile(NOT_BLANK_PATTERN)

# An absolute http(s) URL without credentials, spaces or control characters.
WEB_URL_PATTERN = r"^https?://[^\x00-\x20\x7f/?#@\[\]\\]+(?:[/?#][^\x00-\x20\x7f]*)?$"
WEB_URL = re.compile(WEB_URL_PATTERN)


# Or a path on this server ("/static/demo/harbour.svg"): Bulletin's own files are stored
# so, and every answer that needs an absolute URL adds the public base URL it serves under.
SERVER_PATH_PATTERN = r"/[^\x00-\x20\x7f/\\][^\x00-\x20\x7f\\]*"
MEDIA_URL_PATTERN = f"^(?:{WEB_URL_PATTERN[1:-1]}|{SERVER_PATH_PATTERN})$"
MEDIA_URL = re.compile(MEDIA_URL_PATTERN)


def _web_url(value: str) -> str:
    if not WEB_URL.fullmatch(value):
        raise ValueError("must be an absolute http(s) URL, without spaces or credentials")
    return value


def _media_url(value: str) -> str:
    if not MEDIA_URL.fullmatch(value):
        raise ValueError(
            "must be an absolute http(s) URL or a path on this server (/static/...), "
            "without spaces or credentials"
        )
    return value


TIME_ZONES = frozenset(available_timezones())


def _time_zone(value: str) -> str:
    if value not in TIME_ZONES:
        raise ValueError("must be an IANA time zone such as 'Europe/London'")
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# RFC 3339 with an offset, in the years FIRST_YEAR (2) to LAST_YEAR (9998) as written.
_YEAR = (
    "(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
)
MOMENT_PATTERN = (
    f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}[Tt][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:[.][0-9]+)?"
    "(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
MOMENT = re.compile(MOMENT_PATTERN)


def _moment_text(value: object) -> object:
    # JSON has no time type: a time is a string, never a number of seconds since 1970.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not MOMENT.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 time with an offset between the years "
            f"{FIRST_YEAR} and {LAST_YEAR}, such as '2026-05-04T18:30:00Z'"
        )
    return value


def _moment_in_range(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value.astimezone(UTC)


# Every time the API returns is UTC, whatever offset it was written with.
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
# A time a client sends.
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_moment_text),
    AfterValidator(_moment_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": MOMENT_PATTERN}),
]
WebUrl = Annotated[
    str,
    StringConstraints(max_length=2000, pattern=WEB_URL_PATTERN),
    AfterValidator(_web_url),
]
MediaUrl = Annotated[
    str,
    StringConstraints(max_length=2000, pattern=MEDIA_URL_PATTERN),
    AfterValidator(_media_url),
]
TimeZoneName = Annotated[
    str,
    AfterValidator(_time_zone),
    WithJsonSchema(
        {"type": "string", "enum": sorted(TIME_ZONES), "description": "An IANA time zone."}
    ),
]
LanguageTag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=35),
    AfterValidator(parse_language),
    WithJsonSchema(
        {
            "type": "string",
            "enum": known_languages(),
            "examples": ["en", "en-GB", "ar", "fr"],
            "description": "A BCP 47 language tag, returned as Babel writes it ('en-gb' → "
            "'en-GB'). It sets the reader page's words, dates and direction (right to left "
            "for Arabic, Persian, Hebrew, Urdu).",
        }
    ),
]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SLUG_PATTERN)]
MediaId = Annotated[StrictInt, Field(ge=1, le=MAX_INT)]
PlainText = Annotated[str, StringConstraints(max_length=1000)]
# Text with its surrounding whitespace removed, that must not be blank.
Topic = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=60, pattern=NOT_BLANK_PATTERN
    ),
]
# A tag the newsroom gives an entry: words of letters and digits, joined by single spaces
# or hyphens; stored lower-case with hyphens ("Supreme Court" is "supreme-court").
TAG_PATTERN = r"^[^\W_]+(?:[ -][^\W_]+)*$"
TAG_RE = re.compile(TAG_PATTERN)
MAX_TAG_CHARS = 30
MAX_TAGS = 10


def normalise_tag(value: str) -> str:
    """The stored form of a tag: lower-case, words joined by hyphens."""
    return value.lower().replace(" ", "-")


def _unique_tags(values: list[str]) -> list[str]:
    # Two spellings of one tag ("Courts", "courts") are one tag, kept where first given.
    return list(dict.fromkeys(normalise_tag(value) for value in values))


Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG_CHARS, pattern=TAG_PATTERN)]
Tags = Annotated[
    list[Tag],
    Field(
        max_length=MAX_TAGS,
        description=f"Up to {MAX_TAGS} short labels (letters and digits, words joined by a "
        f"space or a hyphen, up to {MAX_TAG_CHARS} characters); stored lower-case with "
        "hyphens, duplicates dropped. Readers filter the page by them.",
    ),
    AfterValidator(_unique_tags),
]
Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK_PATTERN
    ),
]
Title = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=300, pattern=NOT_BLANK_PATTERN
    ),
]
BlogStatus = Literal["live", "ended"]
# What an entry may be written as; `returned` is an editor's answer to a submission.
EntryStatus = Literal["draft", "submitted", "published"]
EntryTransition = Literal["draft", "submitted", "returned", "published"]
# What a stored entry can be: a deleted one is a tombstone; a scheduled one waits, private,
# for its `publish_at` (a held or scheduled publish, app/scheduling.py).
EntryState = Literal["draft", "submitted", "returned", "scheduled", "published", "deleted"]
# The undo window: the longest a publish can be held, in seconds.
MAX_HOLD_SECONDS = 60


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def _ascii_digits(value: object) -> object:
    # A number in a path or query arrives as text; int() would also take signs, spaces,
    # underscores and other scripts' digits. Pydantic refuses more than 4,300 digits.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in ASCII digits")
    return value


# Put after Query(...) or Path(...) in an Annotated parameter (before them, FastAPI drops
# their bounds from the OpenAPI schema).
ASCII_DIGITS = BeforeValidator(_ascii_digits)


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
    name: Name
    role: Annotated[str, StringConstraints(max_length=100)] | None = None
    url: WebUrl | None = None


# Exactly one of `url` and `media_id`; `media_id` only for an image. What
# Media._one_source checks, stated for the OpenAPI schema.
ONE_MEDIA_SOURCE: dict[str, Any] = {
    "oneOf": [{"required": ["url"]}, {"required": ["media_id"]}],
    "if": {"required": ["media_id"]},
    "then": {"properties": {"kind": {"const": "image"}}},
}


class Media(RequestModel):
    """A photo, video or embed: by `url` (anywhere, or a path on this server) or, for a photo
    uploaded to this blog (`POST /api/v1/blogs/{slug}/media`), by its `media_id`."""

    model_config = ConfigDict(json_schema_extra=ONE_MEDIA_SOURCE)

    kind: Literal["image", "video", "embed"]
    url: MediaUrl | MISSING = MISSING
    media_id: MediaId | MISSING = Field(
        MISSING, description="An upload to this blog; the entry shows its renditions."
    )
    caption: PlainText = ""
    credit: Annotated[str, StringConstraints(max_length=300)] = ""
    alt: PlainText = Field(
        "", description="Required for images on blogs with `require_alt_text` (422 otherwise)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> "Media":
        has_url, has_id = self.url is not MISSING, self.media_id is not MISSING
        if has_url == has_id:
            raise ValueError("give exactly one of url and media_id")
        if has_id and self.kind != "image":
            raise ValueError("media_id names an uploaded photo: kind must be image")
        return self


Headline = Annotated[str, StringConstraints(max_length=300)]
BodyHtml = Annotated[str, StringConstraints(max_length=MAX_BODY_CHARS)]


Authors = Annotated[list[Author], Field(max_length=20)]
MediaList = Annotated[list[Media], Field(max_length=20)]
# The schema of "a headline, a body or media": what EntryCreate._has_content checks.
HAS_CONTENT: dict[str, Any] = {
    "anyOf": [
        {"required": ["headline"], "properties": {"headline": {"type": "string", "minLength": 1}}},
        {"required": ["body"], "properties": {"body": {"pattern": NOT_BLANK_PATTERN}}},
        {"required": ["media"], "properties": {"media": {"minItems": 1}}},
    ]
}
# Only a published entry can be pinned (app/publishing.py refuses the pair with 422).
NOT_A_PINNED_DRAFT: dict[str, Any] = {
    "not": {
        "required": ["pinned", "status"],
        "properties": {
            "pinned": {"const": True},
            "status": {"enum": ["draft", "submitted", "returned"]},
        },
    }
}
# An entry is returned with a note, and a note goes only with a return (EntryUpdate._review).
RETURNED_WITH_A_NOTE: dict[str, Any] = {
    "allOf": [
        {
            "if": {"required": ["status"], "properties": {"status": {"const": "returned"}}},
            "then": {"required": ["review_note"]},
        },
        {
            "if": {"required": ["review_note"]},
            "then": {"required": ["status"], "properties": {"status": {"const": "returned"}}},
        },
    ]
}
# A publish held for `hold_seconds` (over 0) or scheduled for `publish_at`: what the
# publisher refuses with 422, stated for the OpenAPI schema. Not both; only for a publish
# (or a scheduled entry's new time, in an edit); never pinned; published_at is then the
# moment it goes out.
_SCHEDULING: dict[str, Any] = {
    "anyOf": [
        {"required": ["publish_at"]},
        {"required": ["hold_seconds"], "properties": {"hold_seconds": {"minimum": 1}}},
    ]
}
SCHEDULE_RULES: list[Any] = [
    {
        "not": {
            "required": ["hold_seconds", "publish_at"],
            "properties": {"hold_seconds": {"minimum": 1}},
        }
    },
    {
        "if": _SCHEDULING,
        "then": {
            "properties": {"status": {"const": "published"}},
            "not": {
                "anyOf": [
                    {
                        "required": ["published_at"],
                        "properties": {"published_at": {"type": "string"}},
                    },
                    {"required": ["pinned"], "properties": {"pinned": {"const": True}}},
                ]
            },
        },
    },
]


def _whole_number(value: object) -> object:
    # JSON does not tell 6 from 6.0: a whole number written either way is one.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


HoldSeconds = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_HOLD_SECONDS),
    BeforeValidator(_whole_number),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_HOLD_SECONDS}),
]
HOLD_DESCRIPTION = (
    "The undo window: hold the publish this many seconds (0-60). The answer is then 202 "
    "with the entry `scheduled`, private until it goes out; `POST .../cancel-publish` "
    "undoes it. Not with `publish_at`."
)
PUBLISH_AT_DESCRIPTION = (
    "Schedule the publish for this time: later than now and at most a year ahead (422 "
    "otherwise). The answer is 202 with the entry `scheduled` until then."
)


def _schedule_problem(
    status: object, hold_seconds: object, publish_at: object, pinned: object, published_at: object
) -> str | None:
    """What is wrong with a hold or schedule in a request, in words; None if nothing."""
    holding = isinstance(hold_seconds, int) and hold_seconds > 0
    if not (holding or publish_at is not MISSING):
        return None
    if holding and publish_at is not MISSING:
        return "give hold_seconds or publish_at, not both"
    if status not in ("published", MISSING):
        return 'hold_seconds and publish_at go with "status": "published"'
    if pinned is True:
        return "a held or scheduled entry cannot be pinned: pin it once it is published"
    if published_at not in (None, MISSING):
        return "a held or scheduled entry is dated when it goes out: leave out published_at"
    return None


ReviewNote = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=2000, pattern=NOT_BLANK_PATTERN
    ),
]


# A public correction note: plain text (shown escaped), trimmed, not blank.
CorrectionNote = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=280, pattern=NOT_BLANK_PATTERN
    ),
]
# A correction is not a minor fix, and goes with an entry that stays published
# (EntryUpdate._correction_or_minor; app/publishing.py refuses one on an unpublished entry).
CORRECTION_OR_MINOR: list[dict[str, Any]] = [
    {"not": {"required": ["correction", "minor"], "properties": {"minor": {"const": True}}}},
    {
        "not": {
            "required": ["correction", "status"],
            "properties": {"status": {"enum": ["draft", "submitted", "returned"]}},
        }
    },
]


class EntryCreate(RequestModel):
    """A new entry: it needs a headline, a body that is not blank, or media."""

    model_config = ConfigDict(
        json_schema_extra={**HAS_CONTENT, **NOT_A_PINNED_DRAFT, "allOf": SCHEDULE_RULES}
    )

    headline: Headline | None = None
    body: BodyHtml = Field("", description="HTML; sanitised to a safe allow-list.")
    authors: Authors = []
    media: MediaList = []
    key_event: StrictBool = False
    tags: Tags = []
    pinned: StrictBool = Field(False, description="Pin on top of the blog; unpins any other entry.")
    status: EntryStatus = Field(
        "published",
        description="`draft` and `submitted` (for an editor's review) are private; publishing "
        "needs the editor role, or a blog whose contributors may publish.",
    )
    published_at: Moment | None = Field(
        None,
        description="Defaults to now; set it to back-fill an earlier item. Not later than now.",
    )
    hold_seconds: HoldSeconds = Field(0, description=HOLD_DESCRIPTION)
    publish_at: Moment | MISSING = Field(MISSING, description=PUBLISH_AT_DESCRIPTION)

    @model_validator(mode="after")
    def _has_content(self) -> "EntryCreate":
        if not (self.headline or NOT_BLANK.search(self.body) or self.media):
            raise ValueError("an entry needs a headline, a body or media")
        problem = _schedule_problem(
            self.status, self.hold_seconds, self.publish_at, self.pinned, self.published_at
        )
        if problem:
            raise ValueError(problem)
        return self


class EntryUpdate(RequestModel):
    """Only the fields sent are changed; send `headline: null` to remove the headline.

    An edit that would leave the entry without a headline, a body or media is refused
    (422), and so is pinning a draft (409). `status` moves an entry through review:
    draft → submitted → published, or submitted → returned (with a `review_note`) → draft
    or submitted again; a published entry can go back to draft only (409 otherwise).
    """

    model_config = ConfigDict(
        json_schema_extra={
            **NOT_A_PINNED_DRAFT,
            "allOf": [*RETURNED_WITH_A_NOTE["allOf"], *CORRECTION_OR_MINOR, *SCHEDULE_RULES],
        }
    )

    headline: Headline | None = None
    body: BodyHtml | MISSING = MISSING
    authors: Authors | MISSING = MISSING
    media: MediaList | MISSING = MISSING
    key_event: StrictBool | MISSING = MISSING
    tags: Tags | MISSING = MISSING
    pinned: StrictBool | MISSING = MISSING
    status: EntryTransition | MISSING = MISSING
    review_note: ReviewNote | MISSING = Field(
        MISSING,
        description="The editor's note to the writer; required with `status: returned`, and "
        "only with it.",
    )
    published_at: Moment | MISSING = Field(
        MISSING,
        description="Not later than now. A draft or submission published for the first time "
        "is dated the moment it is published, unless this is sent with it.",
    )
    redact: StrictBool = Field(
        False,
        description="Also rewrite what the log still shows of earlier versions of this entry "
        "to the version after this change (a legal or safety correction); an "
        "`entry.redacted` event follows.",
    )
    hold_seconds: HoldSeconds | MISSING = Field(
        MISSING,
        description=HOLD_DESCRIPTION + ' With `"status": "published"` (from a private state), '
        "or alone on a scheduled entry (its new time: now plus the hold).",
    )
    publish_at: Moment | MISSING = Field(
        MISSING,
        description=PUBLISH_AT_DESCRIPTION + ' With `"status": "published"` (from a private '
        "state), or alone on a scheduled entry to reschedule it.",
    )

    correction: CorrectionNote | MISSING = Field(
        MISSING,
        description="A public correction note (plain text, up to 280 characters) for an edit "
        'of a published entry: readers see "Correction: ..." with its time, and '
        '"Updated". Notes accumulate; 422 on an entry that is not published.',
    )
    minor: StrictBool = Field(
        False,
        description='A minor fix (a typo): no note, and the "Updated" time readers see '
        "stays as it was. The revision records it as minor.",
    )

    @model_validator(mode="after")
    def _correction_or_minor(self) -> "EntryUpdate":
        if self.correction is MISSING:
            return self
        if self.minor:
            raise ValueError("an edit is either a correction or a minor fix, not both")
        if self.status in ("draft", "submitted", "returned"):
            raise ValueError("a correction goes with an entry that stays published")
        return self

    @model_validator(mode="after")
    def _review(self) -> "EntryUpdate":
        returning = self.status == "returned"
        noted = self.review_note is not MISSING
        if returning and not noted:
            raise ValueError("an entry is returned with a review_note for its writer")
        if noted and not returning:
            raise ValueError('a review_note goes only with "status": "returned"')
        problem = _schedule_problem(
            self.status, self.hold_seconds, self.publish_at, self.pinned, self.published_at
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def holds_or_schedules(self) -> bool:
        """Whether this edit holds or schedules a publish (answered 202)."""
        held = isinstance(self.hold_seconds, int) and self.hold_seconds > 0
        return held or isinstance(self.publish_at, datetime)


class AuthorPublic(BaseModel):
    name: str
    role: str | None = None
    url: str | None = None


def _absent(value: object) -> bool:
    return value is None


class RenditionPublic(BaseModel):
    """One stored file of an uploaded photo: stripped of all metadata, in sRGB."""

    format: Literal["webp", "jpeg"]
    width: int
    height: int
    bytes: int
    url: str = Field(
        description="A path on this server (/media/...) or the bucket's public URL; "
        "content-addressed, so it never changes and is cached for a year."
    )


class EmbedThumbnailPublic(BaseModel):
    """An embed's thumbnail, fetched once at publish time and kept as our own renditions."""

    width: int
    height: int
    placeholder: str = Field(description="The dominant colour, #rrggbb.")
    renditions: list[RenditionPublic]


class EmbedPublic(BaseModel):
    """What an embed of a known provider showed when it was published (its oEmbed answer,
    as plain text): the page's static card. The provider's frame loads only on a click."""

    provider: str = Field(description="youtube, vimeo, x, instagram, tiktok, bluesky, ...")
    provider_name: str
    resolved: bool = Field(
        description="False when the provider did not answer in time or answered garbage: "
        "the card is then a plain link."
    )
    canonical_url: str
    title: str | None = None
    text: str | None = Field(None, description="A post's text, plain.")
    author_name: str | None = None
    author_url: str | None = None
    frame_url: str | None = Field(
        None, description="Loaded in a sandboxed frame only after the reader asks."
    )
    thumbnail: EmbedThumbnailPublic | None = None


class MediaPublic(BaseModel):
    kind: str
    url: str = Field(description="For an uploaded photo: its largest JPEG rendition.")
    caption: str = ""
    credit: str = ""
    alt: str = ""
    # Uploaded photos only: absent for media by URL.
    media_id: int | None = Field(None, exclude_if=_absent)
    width: int | None = Field(None, exclude_if=_absent, description="Intrinsic, as shown.")
    height: int | None = Field(None, exclude_if=_absent)
    placeholder: str | None = Field(
        None, exclude_if=_absent, description="The dominant colour, #rrggbb."
    )
    renditions: list[RenditionPublic] | None = Field(None, exclude_if=_absent)
    # Embeds of a known provider only.
    embed: EmbedPublic | None = Field(None, exclude_if=_absent)


class UploadedMediaPublic(BaseModel):
    """An uploaded photo, ready to be named by `media_id` in an entry."""

    id: int
    blog: str = Field(description="The blog's slug: only its entries may use it.")
    kind: Literal["image"] = "image"
    source_format: Literal["jpeg", "png", "webp", "heif", "gif"] = Field(
        description="What was uploaded; an animated file is shown as its first frame."
    )
    width: int = Field(description="Intrinsic width as shown, after the EXIF orientation.")
    height: int
    placeholder: str = Field(description="The dominant colour, #rrggbb, shown until it loads.")
    url: str = Field(description="The largest JPEG rendition.")
    renditions: list[RenditionPublic] = Field(
        description="WebP and JPEG at 320, 640, 1024 and 1600 pixels wide, never wider than "
        "the upload (then at its own width), smallest first."
    )
    created_at: UtcDatetime


class CorrectionPublic(BaseModel):
    note: str = Field(description="Plain text.")
    at: UtcDatetime


class EntryPublic(BaseModel):
    id: int
    blog: str = Field(description="The blog's slug.")
    headline: str | None
    body: str = Field(description="Sanitised HTML.")
    authors: list[AuthorPublic]
    media: list[MediaPublic]
    key_event: bool
    tags: list[str] | None = Field(
        None, description="The newsroom's tags, normalised; absent if none.", exclude_if=_absent
    )
    pinned: bool
    status: EntryState
    published_at: UtcDatetime
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = Field(description="Starts at 1; bumped on every edit.")
    modified_at: UtcDatetime | None = Field(
        None,
        description='What readers are shown as "Updated": the last edit of its content '
        "after it was published (not minor fixes, pins or flags). Absent if never. "
        "`updated_at` is the record's last change of any kind.",
        exclude_if=_absent,
    )
    correction: CorrectionPublic | None = Field(
        None, description="The newest public correction note; absent if none.", exclude_if=_absent
    )
    corrections: list[CorrectionPublic] | None = Field(
        None,
        description="Every public correction note, oldest first; absent if none.",
        exclude_if=_absent,
    )
    review_note: str | None = Field(
        None,
        description="On a returned entry (or a draft made of one), to its blog's members "
        "only: the editor's note. Absent otherwise.",
        exclude_if=lambda note: note is None,
    )
    publish_at: UtcDatetime | None = Field(
        None,
        description="On a scheduled entry (held or scheduled, to its blog's members only): "
        "when it is published. Absent otherwise.",
        exclude_if=_absent,
    )


class RevisionPublic(BaseModel):
    """One version of an entry as it was written, for the blog's editors."""

    version: int
    headline: str | None
    body: str = Field(description="Sanitised HTML.")
    authors: list[AuthorPublic]
    media: list[MediaPublic]
    key_event: bool
    tags: list[str] = []
    pinned: bool
    status: EntryState
    published_at: UtcDatetime
    changed_at: UtcDatetime = Field(description="When this version was made.")
    changed_by: str | None = Field(description="Who made it: a user's name, or a token.")
    changed_by_user_id: int | None
    correction: str | None = Field(None, description="The correction note this version added.")
    minor: bool = Field(False, description="Marked a minor fix.")


class RevisionsPublic(BaseModel):
    items: list[RevisionPublic] = Field(description="Newest first; the first is the entry now.")


class RevisionsDiff(BaseModel):
    from_version: int
    to_version: int
    changes: dict[str, dict[str, Any]] = Field(
        description="Each field that differs, with its value in each version."
    )
    headline_diff: str = Field(description="A unified diff of the headline.")
    text_diff: str = Field(description="A unified diff of the text, one line per paragraph.")


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


Summary = Annotated[str, StringConstraints(max_length=5000)]
Topics = Annotated[list[Topic], Field(max_length=20)]


class BlogCreate(RequestModel):
    slug: Slug
    title: Title
    summary: Summary = ""
    status: BlogStatus = "live"
    timezone: TimeZoneName = "UTC"
    language: LanguageTag = "en"
    coverage_start: Moment | None = Field(None, description="Defaults to now.")
    coverage_end: Moment | None = None
    topics: Topics = []
    previous_slug: Slug | None = Field(None, description="The blog this one continues.")
    require_alt_text: StrictBool = Field(
        False, description="Refuse to publish an image without alt text (422)."
    )
    noindex: StrictBool = Field(
        False, description="Keep the blog out of search engines (robots meta, sitemaps)."
    )
    show_readers_count: StrictBool = Field(
        False, description='Show readers "N reading now" (rounded) on the reader page.'
    )


class BlogUpdate(RequestModel):
    """Only the fields sent are changed; send null to clear `coverage_end` or `previous_slug`."""

    title: Title | MISSING = MISSING
    summary: Summary | MISSING = MISSING
    status: BlogStatus | MISSING = MISSING
    timezone: TimeZoneName | MISSING = MISSING
    language: LanguageTag | MISSING = MISSING
    coverage_start: Moment | MISSING = MISSING
    coverage_end: Moment | None = None
    topics: Topics | MISSING = MISSING
    previous_slug: Slug | None = None
    require_alt_text: StrictBool | MISSING = MISSING
    noindex: StrictBool | MISSING = MISSING
    show_readers_count: StrictBool | MISSING = MISSING


class BlogPublic(BaseModel):
    slug: str
    title: str
    summary: str = Field(description="Sanitised HTML.")
    status: BlogStatus
    timezone: str
    language: str = Field("en", description="A BCP 47 language tag: the reader page's words.")
    coverage_start: UtcDatetime
    coverage_end: UtcDatetime | None
    topics: list[str]
    previous_slug: str | None
    pinned_entry_id: int | None
    head_seq: int = Field(description="The newest seq in this blog's change log.")
    require_alt_text: bool = Field(False, description="Images need alt text to be published.")
    noindex: bool = Field(False, description="Kept out of search engines.")
    show_readers_count: bool = Field(
        False, description='Its reader page shows "N reading now", rounded.'
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = Field(
        1, description="Starts at 1; bumped on every change to the blog (not to its entries)."
    )


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
    headline_html: str | None = Field(
        None,
        description="On entry.* events of a published entry: its headline and time as one "
        "line linking to its permalink (a line of the live card, `/blogs/{slug}/card`).",
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
    """A token of a user (`user_id`), acting as that user, or a legacy token of no user
    (`scope`): exactly one of the two. Either may be narrowed to some `blogs` and a
    `max_role`; a token never does more than its user (or its scope)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["scope"]}, {"required": ["user_id"]}]}
    )

    name: Name
    scope: Literal["publish", "admin"] | MISSING = Field(
        MISSING, description="A legacy token: `admin` is a global admin, `publish` an editor."
    )
    user_id: Annotated[int, Field(ge=1, le=MAX_INT)] | MISSING = MISSING
    blogs: Annotated[list[Slug], Field(min_length=1, max_length=100)] | MISSING = Field(
        MISSING, description="Act on these blogs only."
    )
    max_role: Role | MISSING = Field(MISSING, description="Never act above this role.")

    @model_validator(mode="after")
    def _one_kind(self) -> "TokenCreate":
        if (self.scope is MISSING) == (self.user_id is MISSING):
            raise ValueError("a token has either a user_id or a scope")
        return self


class TokenPublic(BaseModel):
    id: int
    name: str
    scope: str = Field(description="`admin` or `publish` (legacy tokens), `user`.")
    user_id: int | None = Field(description="The user the token acts as.")
    blogs: list[str] = Field(description="The blogs it is narrowed to; empty: no narrowing.")
    max_role: Role | None
    prefix: str = Field(
        description="The first characters of a generated secret; empty for BULLETIN_ADMIN_TOKEN."
    )
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class TokenCreated(TokenPublic):
    secret: str = Field(description="Shown once; only its hash is stored.")


IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
# Merged into an operation whose token is optional: FastAPI lists the bearer scheme alone,
# which says a token is required; the empty alternative says none is needed.
OPTIONAL_TOKEN: dict[str, Any] = {"security": [{}]}


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
        403: "The caller's role does not allow this; the message names the role needed.",
        404: "No such blog or entry.",
        409: "Conflicts with the current state.",
        412: "If-Match names a version that is no longer current: `current` holds the one now.",
        413: "The body is too large.",
        415: "The body is not JSON.",
        422: "A field is invalid; see `fields`.",
        429: "Over a public rate limit: try again after `Retry-After` seconds.",
    }
    return {s: {"model": ErrorPublic, "description": descriptions[s]} for s in statuses}


# Any request but the operations endpoints may meet a public rate limit (app/limits).
RATE_LIMITED = error_responses(429)


# --- webhooks --------------------------------------------------------------


def _signing_secret(value: SecretStr) -> SecretStr:
    check_signing_secret(value.get_secret_value())
    return value


# `whsec_` and the base64 of MIN_SECRET_BYTES (24) to MAX_SECRET_BYTES (64) bytes: 8 to 21
# groups of four characters (3 bytes each), then the last one or two bytes, padded or not.
_B64 = "[A-Za-z0-9+/]"
SIGNING_SECRET_PATTERN = (
    f"^whsec_(?:(?:{_B64}{{4}}){{8,20}}(?:{_B64}{{2}}(?:==)?|{_B64}{{3}}=?)?"
    f"|(?:{_B64}{{4}}){{21}}(?:{_B64}{{2}}(?:==)?)?)$"
)
SigningSecret = Annotated[
    SecretStr,
    AfterValidator(_signing_secret),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "writeOnly": True,
            "pattern": SIGNING_SECRET_PATTERN,
        }
    ),
]
# A host name, an IPv4 address or a bracketed IPv6 one; an optional port; printable ASCII
# after it: what the delivery client (httpx) takes as it is. Four all-digit labels are an
# IPv4 address or nothing, as httpx reads them; credentials are refused after this check,
# by the target check, with its own code and reason.
_HEX = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = f"(?:{_OCTET}[.]){{3}}{_OCTET}"
_IPV6 = "|".join(
    [
        f"(?:{_HEX}:){{7}}{_HEX}",
        f"(?:{_HEX}:){{1,7}}:",
        f"(?:{_HEX}:){{1,6}}:{_HEX}",
        f"(?:{_HEX}:){{1,5}}(?::{_HEX}){{1,2}}",
        f"(?:{_HEX}:){{1,4}}(?::{_HEX}){{1,3}}",
        f"(?:{_HEX}:){{1,3}}(?::{_HEX}){{1,4}}",
        f"(?:{_HEX}:){{1,2}}(?::{_HEX}){{1,5}}",
        f"{_HEX}:(?::{_HEX}){{1,6}}",
        f":(?:(?::{_HEX}){{1,7}}|:)",
        f"::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{_IPV4}",
        f"(?:{_HEX}:){{1,4}}:{_IPV4}",
    ]
)
_LABEL = "[A-Za-z0-9-]{1,63}"
_WORD = "[0-9]{0,62}[A-Za-z-][A-Za-z0-9-]{0,62}"  # a label that is not all digits
_DIGITS = "[0-9]{1,63}"
_NAME = (
    f"(?:{_LABEL}[.])*{_WORD}(?:[.]{_LABEL})*[.]?"
    f"|{_DIGITS}(?:[.]{_DIGITS}){{0,2}}[.]?"
    f"|{_DIGITS}(?:[.]{_DIGITS}){{4,}}[.]?"
)
_PORT = "(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_WEBHOOK_URL = (
    f"https?://CREDENTIALS(?:{_NAME}|{_IPV4}|\\[(?:{_IPV6})\\])(?::{_PORT})?(?:[/?#][!-~]*)?"
)
WEBHOOK_URL_PATTERN = "^" + _WEBHOOK_URL.replace("CREDENTIALS", "") + "$"
WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)
_WITH_CREDENTIALS = re.compile(_WEBHOOK_URL.replace("CREDENTIALS", "[^/?#@]*@"))


def _webhook_url(value: str) -> str:
    if not (WEBHOOK_URL.fullmatch(value) or _WITH_CREDENTIALS.fullmatch(value)):
        raise ValueError("must be an absolute http(s) URL with a host, in printable ASCII")
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=2000),
    AfterValidator(_webhook_url),
    WithJsonSchema({"type": "string", "maxLength": 2000, "pattern": WEBHOOK_URL_PATTERN}),
]
WebhookDescription = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]


class WebhookCreate(RequestModel):
    url: WebhookUrl = Field(description="Where each event is POSTed: a public http(s) address.")
    secret: SigningSecret = Field(
        description=f"A Standard Webhooks secret, `whsec_` + base64 of {MIN_SECRET_BYTES}-"
        f"{MAX_SECRET_BYTES} random bytes; signs every delivery. Stored encrypted and never "
        "shown again."
    )
    description: WebhookDescription = ""


class WebhookUpdate(RequestModel):
    """Only the fields sent are changed; `active: true` re-enables a disabled webhook."""

    active: StrictBool | MISSING = MISSING
    url: WebhookUrl | MISSING = MISSING
    secret: SigningSecret | MISSING = Field(MISSING, description="Replaces the signing secret.")
    description: WebhookDescription | MISSING = MISSING


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


# --- audit -----------------------------------------------------------------


class AuditRecordPublic(BaseModel):
    """One change: what, when, by whom (user and token), from which address."""

    id: int
    at: UtcDatetime
    action: str = Field(description="e.g. `entry.published`, `entry.returned`, `member.added`.")
    actor_user_id: int | None
    actor_token_id: int | None
    via: str = Field(description="`token`, `session`, `command line` or `system`.")
    address: str | None = Field(description="The client's address, as the server saw it.")
    blog: str | None = Field(description="The blog's slug, for changes of a blog.")
    entry_id: int | None
    seq: int | None = Field(description="The first seq the change logged, if it logged one.")
    details: dict[str, Any] = Field(description="The fields changed, and states from and to.")


class AuditRecordsPublic(BaseModel):
    items: list[AuditRecordPublic]
    next_cursor: str | None = Field(description="Pass as `before` for the next, older page.")
