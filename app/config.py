"""Bulletin's settings: one object, read from `BULLETIN_*` environment variables."""

import ipaddress
import resource
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "admin", "password", "token"}
MIN_ADMIN_TOKEN_LENGTH = 24
RATE_LIMIT_STORAGE_SCHEMES = ("memory://", "redis://", "rediss://")
MIN_SECRET_KEY_LENGTH = 32
DEFAULT_PORTS = {"http": 80, "https": 443}
# A long run of one or two characters is not random.
MIN_SECRET_DISTINCT = 8
# The source tree (Bulletin runs from it: templates and static files live in web/). The
# default database sits here whatever directory a command is started from.
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_DIR / 'bulletin.db'}"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 (names to recognise, not to bind)


def normalise_database_url(url: str) -> str:
    """Pick the async driver for plain `postgresql://` and `sqlite://` URLs."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def local_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens to reach a server listening on host:port."""
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}" if port == DEFAULT_PORTS["http"] else f"http://{host}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_weak_secret(name: str, value: SecretStr | None, min_length: int) -> SecretStr | None:
    """The one rule for secrets set by a person: long, not a placeholder, not a long run of
    a few characters (a short check, not a measure of randomness)."""
    if value is None:
        return None
    secret = value.get_secret_value()
    if (
        secret.lower() in PLACEHOLDER_SECRETS
        or len(secret) < min_length
        or len(set(secret)) < MIN_SECRET_DISTINCT
    ):
        raise ValueError(
            f"{name} must be a random secret of at least {min_length} characters "
            f"(at least {MIN_SECRET_DISTINCT} of them different), not a placeholder: "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one"
        )
    return value


def web_origin(url: str) -> str | None:
    """The origin of an http(s) URL as browsers send it in `Origin` (lower case, no default
    port), or "null"; None for anything else."""
    if url.strip().lower() == "null":
        return "null"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname or parts.username:
        return None
    scheme = parts.scheme.lower()
    shown_port = "" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}{shown_port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BULLETIN_", env_ignore_empty=True, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Apply migrations when `bulletin serve` starts (before any worker runs).
    migrate_on_start: bool = False
    # Bootstraps one admin token from the environment; stored only as a hash.
    admin_token: SecretStr | None = None
    max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024
    # The address readers use, for links in pages, feeds and structured data. Unset,
    # `bulletin serve` and `bulletin demo` use the address they are told to listen on.
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    # The publication's name and language (ISO 639), as search engines and cards name it.
    site_name: Annotated[str, Field(min_length=1, max_length=200)] = "Bulletin"
    site_language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")] = "en"
    # The publication's logo (an https URL or a path on this server): the masthead and the
    # publisher in structured data; none shows the name alone.
    site_logo_url: Annotated[str, Field(pattern=r"^(https?://[^\s]+|/[^/\\\s][^\s]*)$")] | None = (
        None
    )
    # memory:// for one process; redis://host:port/db to share events between processes.
    broker_url: str = "memory://"
    # Each reader's send buffer; a reader this far behind is closed and resumes by seq.
    reader_buffer_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    # How often each process compares its blogs with the log, catching lost announcements.
    hub_check_seconds: Annotated[float, Field(gt=0)] = 2.0
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 15.0
    # How long a "who is editing" flag lives unless its holder renews it (app/presence.py).
    editing_seconds: Annotated[float, Field(gt=0)] = 30.0
    # How often each process reports its readers and receipts to the others.
    readers_report_seconds: Annotated[float, Field(gt=0)] = 5.0
    # Encrypts webhook signing secrets at rest; without it no webhook can be registered.
    secret_key: SecretStr | None = None
    # Webhook targets on loopback, private or link-local networks are refused unless allowed.
    webhook_allow_private_targets: bool = False
    webhook_connect_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    webhook_read_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    # After the nth failure in a row: base * 2**(n-1), at most cap, less up to half as jitter.
    webhook_retry_base_seconds: Annotated[float, Field(gt=0)] = 1.0
    webhook_retry_cap_seconds: Annotated[float, Field(gt=0)] = 3600.0
    webhook_disable_after_failures: Annotated[int, Field(gt=0)] = 30
    # How often each process looks for events that other processes published.
    webhook_poll_seconds: Annotated[float, Field(gt=0)] = 2.0
    # Held and scheduled publishes (app/scheduling.py): each process looks for what falls due
    # this often, and holds what it claimed this long past its due time; if it dies, another
    # process publishes it at most lease + sweep seconds late.
    schedule_sweep_seconds: Annotated[float, Field(gt=0)] = 2.0
    schedule_lease_seconds: Annotated[float, Field(gt=0)] = 10.0
    # Per client address (IPv6 by /64); requests with a valid token are never limited.
    rate_limit_enabled: bool = True
    # memory:// counts per process; with several processes use the broker's redis:// URL.
    rate_limit_storage_url: str = "memory://"
    rate_limit_key_prefix: str = "bulletin"
    # How long a request waits on the counters' Redis before the limit fails open (short:
    # a slow Redis must not hold every request up).
    rate_limit_storage_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = 0.5
    rate_limit_reads: str = "600/minute"
    rate_limit_stream_connects: str = "300/minute"
    # Open WebSocket and SSE streams per address, counted in each process.
    max_streams_per_ip: Annotated[int, Field(gt=0)] = 500
    # Proxies whose X-Forwarded-For is believed; unset means uvicorn's default (localhost).
    forwarded_allow_ips: str | None = None
    # Origins whose pages may read the public API, feeds and embed (the embed script).
    cors_origins: list[str] = ["*"]
    # Origins whose pages may open streams; empty: any. This server's own origin
    # (public_base_url) and clients that send no Origin are always let through.
    stream_origins: list[str] = []
    # A request's line and headers (a WebSocket handshake too); more is answered 414 or 431.
    max_request_head_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 32 * 1024
    # A request head must arrive within this long; a body may pause for this long at most.
    request_head_seconds: Annotated[float, Field(gt=0)] = 10.0
    request_body_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Open connections (HTTP and streams) per process; unset: 90% of its open-file limit.
    max_connections: Annotated[int, Field(gt=0)] | None = None
    # Connections the kernel holds for the process before it accepts them (listen(2)'s
    # backlog; Linux caps it at net.core.somaxconn). Past it, a new connection's handshake
    # is dropped and its client tries again 1 s, 3 s, 7 s later: readers reconnecting at
    # once after a restart wait here.
    listen_backlog: Annotated[int, Field(gt=0, le=65535)] = 4096
    log_level: str = "info"
    # `json`: one JSON object a line, with the request id (app/logs.py); `text` for people.
    log_format: Literal["text", "json"] = "text"
    # Photos (app/media/): an upload's largest size, refused while it streams in.
    media_max_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    # Width x height of an upload; Pillow refuses more than twice 89,478,485 pixels by itself.
    media_max_pixels: Annotated[int, Field(gt=0, le=89_478_485)] = 50_000_000
    # Frames of an animated GIF, WebP or HEIF sequence (its first frame is what is shown).
    media_max_frames: Annotated[int, Field(gt=0)] = 300
    # Photos processed at once by this process, each on a worker thread of its own.
    media_workers: Annotated[int, Field(gt=0, le=64)] = 2
    # Where renditions are kept: "local" (media_dir, served at /media/) or "s3".
    media_storage: Literal["local", "s3"] = "local"
    media_dir: Path = PROJECT_DIR / "media"
    media_s3_bucket: str | None = None
    # An S3-compatible service other than AWS (MinIO, R2, ...); unset: AWS itself.
    media_s3_endpoint_url: str | None = None
    media_s3_region: str = "us-east-1"
    # Key prefix inside the bucket, e.g. "bulletin/".
    media_s3_prefix: str = ""
    # Where readers fetch the bucket's objects (a CDN in front, or the bucket's own URL);
    # unset: the endpoint's path-style URL of the bucket, or AWS's virtual-host URL.
    media_s3_public_url: str | None = None
    # Unset: boto3's own chain (AWS_* variables, config files, an instance role).
    media_s3_access_key_id: str | None = None
    media_s3_secret_access_key: SecretStr | None = None
    # Embeds (app/embeds/): each provider's oEmbed endpoint may be replaced, by its key
    # (youtube, vimeo, x, instagram, tiktok, bluesky, mastodon, facebook), as JSON:
    # '{"youtube": "https://oembed.proxy.example/youtube"}'; mastodon's may use {instance}.
    embed_oembed_endpoints: dict[str, str] = {}
    # Mastodon posts are embedded from these instances only (their pages are framed).
    embed_mastodon_instances: list[str] = ["mastodon.social"]
    # Meta's oEmbed (Instagram, Facebook) answers only with an app's access token.
    embed_meta_access_token: SecretStr | None = None
    # Look-ups and thumbnails on loopback or private networks are refused unless allowed.
    embed_allow_private_targets: bool = False
    # How long a publish waits for every embed's look-up and thumbnail, all together.
    embed_resolve_seconds: Annotated[float, Field(gt=0, le=30)] = 3.0
    embed_oembed_max_bytes: Annotated[int, Field(gt=0)] = 256 * 1024
    embed_thumbnail_max_bytes: Annotated[int, Field(gt=0)] = 5 * 1024 * 1024
    # Sign-in sessions of the newsroom page (app/people/sessions.py): a session ends after
    # this long without a request, and this long after sign-in whatever happens.
    session_idle_seconds: Annotated[float, Field(gt=0)] = 12 * 3600.0
    session_lifetime_seconds: Annotated[float, Field(gt=0)] = 7 * 24 * 3600.0
    # Sign-in attempts: failures per login (known or not), and attempts per client address.
    sign_in_limit_per_login: str = "5/15 minutes"
    sign_in_limit_per_address: str = "20/15 minutes"

    @cached_property
    def connection_cap(self) -> int:
        """The most connections this process holds before it refuses new ones (503).
        Read once: every new connection asks."""
        if self.max_connections is not None:
            return self.max_connections
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return 1_000_000
        # The rest is left for the database, the broker, log files and the listening socket.
        return max(1, int(soft * 0.9))

    @cached_property
    def stream_cap(self) -> int:
        """The most connections this process holds before it refuses a new stream (503): the
        rest of connection_cap (a twentieth) is kept for what is not a stream, so that when
        readers fill the process the newsroom still publishes and probes still answer."""
        return max(1, self.connection_cap - max(1, self.connection_cap // 20))

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator(
        "rate_limit_reads",
        "rate_limit_stream_connects",
        "sign_in_limit_per_login",
        "sign_in_limit_per_address",
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        # "600/minute", or several that all apply: "20/second;600/minute".
        import limits  # only settings with limits need the parser (not every CLI command)

        limits.parse_many(value)
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _check_rate_limit_storage(cls, value: str) -> str:
        if not value.startswith(RATE_LIMIT_STORAGE_SCHEMES):
            raise ValueError("BULLETIN_RATE_LIMIT_STORAGE_URL must be memory:// or redis://...")
        return value

    @field_validator("stream_origins")
    @classmethod
    def _normalise_stream_origins(cls, value: list[str]) -> list[str]:
        origins = []
        for listed in value:
            origin = web_origin(listed)
            parts = urlsplit(listed.strip().rstrip("/"))
            if origin is None or (
                origin != "null" and (parts.path or parts.query or parts.fragment)
            ):
                raise ValueError(
                    "BULLETIN_STREAM_ORIGINS lists origins such as https://news.example "
                    f"(scheme, host and port, or null), not {listed[:100]!r}; "
                    "leave it unset to let any page open streams"
                )
            origins.append(origin)
        return origins

    @field_validator("admin_token")
    @classmethod
    def _refuse_weak_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        return refuse_weak_secret("BULLETIN_ADMIN_TOKEN", value, MIN_ADMIN_TOKEN_LENGTH)

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        return refuse_weak_secret("BULLETIN_SECRET_KEY", value, MIN_SECRET_KEY_LENGTH)

    @property
    def public_base_url_is_set(self) -> bool:
        return "public_base_url" in self.model_fields_set

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
