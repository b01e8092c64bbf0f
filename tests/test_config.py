"""Settings refuse placeholder secrets and malformed limits when the app starts."""

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_placeholder_admin_tokens_are_refused() -> None:
    for weak in ("changeme", "short-token"):
        with pytest.raises(ValidationError):
            Settings(admin_token=weak)


@pytest.mark.parametrize(
    "key",
    ["changeme", "secret", "too-short-0123456789", "a" * 40, "abababababababababababababababab"],
)
def test_weak_or_placeholder_secret_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="BULLETIN_SECRET_KEY"):
        Settings(secret_key=key)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rate_limit_reads", "lots"),
        ("rate_limit_stream_connects", "30 per fortnight"),
        ("rate_limit_storage_url", "memcached://127.0.0.1:11211"),
        ("max_streams_per_ip", 0),
    ],
)
def test_malformed_limit_settings_are_refused_at_start(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
