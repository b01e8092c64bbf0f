"""Bulletin's settings: one object, read from `BULLETIN_*` environment variables."""

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "admin", "password", "token"}
MIN_ADMIN_TOKEN_LENGTH = 24


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BULLETIN_", env_ignore_empty=True, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./bulletin.db"
    # Apply migrations when `bulletin serve` starts (before any worker runs).
    migrate_on_start: bool = False
    # Bootstraps one admin token from the environment; stored only as a hash.
    admin_token: SecretStr | None = None
    max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024
    public_base_url: str = "http://127.0.0.1:8000"
    # memory:// for one process; redis://host:port/db to share events between processes.
    broker_url: str = "memory://"
    # Each reader's send buffer; a reader this far behind is closed and resumes by seq.
    reader_buffer_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    # How often each process compares its blogs with the log, catching lost announcements.
    hub_check_seconds: Annotated[float, Field(gt=0)] = 2.0
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 15.0
    # Origins whose pages may read the public API, feeds and embed (the embed script).
    cors_origins: list[str] = ["*"]
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("admin_token")
    @classmethod
    def _refuse_weak_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"BULLETIN_ADMIN_TOKEN must be a random secret of at least "
                f"{MIN_ADMIN_TOKEN_LENGTH} characters, not a placeholder"
            )
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
