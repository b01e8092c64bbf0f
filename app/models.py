"""The stored model: blogs, their entries, the per-blog change log, API tokens, the people
who use them with their roles per blog, the audit log, and uploaded media."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Ids and seqs are 32-bit integer columns on PostgreSQL: a larger number names nothing stored.
MAX_INT = 2**31 - 1
# Moments the API accepts (app/schemas.py) lie in these years, whatever offset they are written
# with, so they stay inside Python's years 1-9999 in UTC and in every blog's time zone.
FIRST_YEAR, LAST_YEAR = 2, 9998


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps go in as UTC and come out timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a time zone")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Blog(Base):
    __tablename__ = "blogs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    summary_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="live")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # BCP 47 (app/i18n/languages.py): the reader page's words, dates and writing direction.
    language: Mapped[str] = mapped_column(String(35), default="en", server_default="en")
    coverage_start: Mapped[datetime] = mapped_column(UTCDateTime)
    coverage_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    previous_blog_id: Mapped[int | None] = mapped_column(
        ForeignKey("blogs.id", ondelete="SET NULL"), nullable=True
    )
    # The newest seq in this blog's change log; bumped in the same transaction as each change.
    head_seq: Mapped[int] = mapped_column(Integer, default=0)
    # An image published without alt text is refused (app/media/references.py).
    require_alt_text: Mapped[bool] = mapped_column(Boolean, default=False)
    # Kept out of search engines: a robots meta on its pages, left out of both sitemaps.
    noindex: Mapped[bool] = mapped_column(Boolean, default=False)
    # Its reader page shows "N reading now", rounded (public only when this is on).
    show_readers_count: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # The operator's kill switch (app/stopping.py): its streams are ended and refused, and
    # its pages and feeds are served from memory only, until an admin turns it off.
    streams_stopped: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # A newsroom setting, never public: whether contributors publish without review.
    contributors_may_publish: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on every change to the blog itself (not to its entries): its ETag for If-Match.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("blog_id", "idempotency_key", name="uq_entries_blog_idempotency_key"),
        Index("ix_entries_blog_published", "blog_id", "status", "published_at", "id"),
        # The scheduler's sweep: scheduled entries by due time (app/scheduling.py).
        Index("ix_entries_due", "status", "publish_at"),
        # At most one pinned entry per blog, enforced by the database as well.
        Index(
            "uq_entries_one_pinned_per_blog",
            "blog_id",
            unique=True,
            sqlite_where=text("pinned"),
            postgresql_where=text("pinned"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    blog_id: Mapped[int] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"))
    headline: Mapped[str | None] = mapped_column(String(300), nullable=True)
    body_html: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    key_event: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="published")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # SHA-256 of the original request, so a reused key with a different body is refused.
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The JSON first answered to that request: a retry is answered the same, even after the
    # entry changed or was deleted (the Idempotency-Key convention).
    idempotent_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The user who wrote it: a contributor may change only its own unpublished entries.
    # None for entries written with a token of no user. (Users are disabled, never deleted;
    # not a foreign key, which SQLite could add to this table only by rebuilding it.)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The editor's note on an entry returned for changes; cleared when it is sent again.
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When readers were last told it changed after it was published (the page's "Updated"):
    # any edit of its content but a minor fix; None if never.
    modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Its public correction notes, oldest first: [{"note": str, "at": ISO 8601 UTC}].
    corrections: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # A held or scheduled publish (status "scheduled", app/scheduling.py): when it is due,
    # the state an undo returns it to, and who scheduled it (the publish is theirs). Not
    # foreign keys, for the reason created_by is not.
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scheduled_from: Mapped[str | None] = mapped_column(String(10), nullable=True)
    scheduled_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scheduled_token: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The process that publishes it when due holds this lease (like a webhook's).
    schedule_lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    schedule_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The newsroom's tags, normalised, in the order given; also one EntryTag row each, so
    # a page filtered by a tag is an indexed query.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))


class EntryTag(Base):
    """One tag of one entry: what the reader page's filter by tag reads."""

    __tablename__ = "entry_tags"
    __table_args__ = (Index("ix_entry_tags_blog_tag", "blog_id", "tag", "entry_id"),)

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    blog_id: Mapped[int] = mapped_column(Integer)


class Event(Base):
    """One numbered change in a blog's log; `payload` is its wire form, built once."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("blog_id", "seq", name="uq_events_blog_seq"),
        # A redaction rewrites every earlier event of one entry.
        Index("ix_events_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    blog_id: Mapped[int] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("entries.id", ondelete="SET NULL"), nullable=True
    )
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Who made the change: kept with the log, never in the payload. Plain ids, not foreign
    # keys: the log is history, and nothing it names may be taken out from under it.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Token(Base):
    """An API token; only a hash of the secret is stored (see app/tokens.py)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of a generated secret, shown in listings to tell tokens apart;
    # empty for BULLETIN_ADMIN_TOKEN, whose characters are never stored.
    prefix: Mapped[str] = mapped_column(String(16))
    from_environment: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A token of a user acts as that user (scope "user"); one without is a legacy token,
    # whose scope says what it may do (app/people/principals.py). Not a foreign key, for
    # the reason Entry.created_by is not.
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # The highest role the token acts with, whatever its user holds; None: the user's own.
    max_role: Mapped[str | None] = mapped_column(String(12), nullable=True)


class TokenBlog(Base):
    """A blog a user's token is narrowed to; a token with none acts on all its user's blogs."""

    __tablename__ = "token_blogs"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True
    )
    blog_id: Mapped[int] = mapped_column(
        ForeignKey("blogs.id", ondelete="CASCADE"), primary_key=True
    )


class User(Base):
    """A person of the newsroom: a name (the default byline), a login and a password hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # The login (an email address) as given, and casefolded: logins are unique whatever
    # their case, compared in Python so that SQLite and PostgreSQL agree.
    login: Mapped[str] = mapped_column(String(320))
    login_key: Mapped[str] = mapped_column(String(320), unique=True)
    # Argon2id, in its PHC string form (app/people/passwords.py).
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Membership(Base):
    """A user's role on one blog: contributor, editor or owner."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_blog", "blog_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    blog_id: Mapped[int] = mapped_column(
        ForeignKey("blogs.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class EntryRevision(Base):
    """One version of an entry as it was written, and who wrote it: kept for every version,
    the current one included, and after the entry is deleted."""

    __tablename__ = "entry_revisions"
    __table_args__ = (
        UniqueConstraint("entry_id", "version", name="uq_entry_revisions_entry_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A deleted entry keeps its row (a tombstone), and so its revisions; only a row removed
    # for good (with its blog) takes them along.
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    blog_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    headline: Mapped[str | None] = mapped_column(String(300), nullable=True)
    body_html: Mapped[str] = mapped_column(Text)
    authors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    key_event: Mapped[bool] = mapped_column(Boolean)
    pinned: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(10))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The name shown for who made it, as it was then (a user's, or a token's).
    actor_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # The public correction note this version added, or whether it was marked a minor fix.
    correction: Mapped[str | None] = mapped_column(String(280), nullable=True)
    minor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))


class SignInSession(Base):
    """A user signed in to the newsroom page; the cookie holds its secret, this row only the
    secret's SHA-256 (app/people/sessions.py).

    It ends at `expires_at` (its absolute lifetime), after BULLETIN_SESSION_IDLE_SECONDS
    without a request (from `last_seen_at`), or when revoked: signed out, or every session of
    its user when the user is disabled or the password changes.
    """

    __tablename__ = "sign_in_sessions"
    __table_args__ = (Index("ix_sign_in_sessions_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Why it was revoked: "signed_out", "replaced", "disabled", "password_changed".
    revoked_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # The address it was signed in from, as the audit log keeps it.
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


class EditingFlag(Base):
    """Who is editing an entry right now (app/presence.py): one live flag per entry, held by
    one user until `expires_at` unless renewed. Kept in the database so that every process
    and machine sees the same flag, on SQLite and PostgreSQL alike."""

    __tablename__ = "editing_flags"
    __table_args__ = (
        Index("ix_editing_flags_blog", "blog_id"),
        Index("ix_editing_flags_expires", "expires_at"),
    )

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True
    )
    blog_id: Mapped[int] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)
    # The holder's name as the newsroom shows it ("Ana is editing").
    user_name: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRecord(Base):
    """One change, who made it, from where and when (app/audit.py).

    Ids of users, tokens, blogs and entries are plain integers, not foreign keys: the
    record outlives what it names, and never stands in the way of removing it.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_blog", "blog_id", "id"),
        # Ids only grow, on SQLite too: they are the cursor of the listing.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    action: Mapped[str] = mapped_column(String(40))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # How the actor came: "token", "command line", "system" (and "session" later).
    via: Mapped[str] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    blog_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The first seq this change logged in the blog's change log, if it logged any.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Webhook(Base):
    """A partner endpoint that receives a blog's events in seq order, with its delivery state.

    `delivered_seq` is the cursor: everything up to it has been delivered. A process
    delivers to a webhook only while it holds the lease (`lease_owner`, `lease_until`).
    """

    __tablename__ = "webhooks"
    # Ids are never reused on SQLite either: delivery ids (`webhook-id`) stay unique.
    __table_args__ = (
        Index("ix_webhooks_due", "active", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    blog_id: Mapped[int] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(300), default="")
    # The signing secret, encrypted with a key derived from BULLETIN_SECRET_KEY.
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_seq: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class WebhookDelivery(Base):
    """One attempt to deliver one event to one webhook, kept for the delivery history."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    # 1 for the first attempt at this seq, 2 for its first retry, and so on.
    attempt: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Installation(Base):
    """Who this installation is: one row, shared by every process on this database.

    The id namespaces the broker's channel, so installations that share a Redis never
    hear each other; the key signs every announcement, so a message that did not come
    from a process of this installation is refused (see app/realtime/broker/).
    """

    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("singleton = 1", name="ck_installation_singleton"),)

    singleton: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(32))
    broker_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class StoredMedia(Base):
    """An uploaded photo: its renditions, stripped of all metadata, and what the page needs
    to lay it out before it loads. The original upload is not kept."""

    __tablename__ = "media"
    __table_args__ = (Index("ix_media_blog", "blog_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    blog_id: Mapped[int] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default="image")
    # What the upload was: "jpeg", "png", "webp", "heif" or "gif".
    source_format: Mapped[str] = mapped_column(String(10))
    source_bytes: Mapped[int] = mapped_column(Integer)
    # As readers see it: after the EXIF orientation was applied.
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # The dominant colour, "#rrggbb", shown until the photo loads.
    placeholder: Mapped[str] = mapped_column(String(7))
    # [{"format", "width", "height", "bytes", "key"}]: each a content-addressed object key.
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
