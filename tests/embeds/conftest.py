"""Embed tests: the app on a fresh database of each kind, its provider list pointed at a
local oEmbed provider on 127.0.0.1 (private targets allowed, as the webhook tests do)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.support.factories import ADMIN_TOKEN
from tests.support.oembed_provider import OembedProvider, running_provider


@pytest.fixture
def oembed() -> Iterator[OembedProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def settings(database_url: str, tmp_path: Path, oembed: OembedProvider) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        media_dir=tmp_path / "media",
        embed_allow_private_targets=True,
        embed_oembed_endpoints=oembed.endpoints,
        embed_mastodon_instances=["mastodon.social", oembed.base],
        # A slow provider costs a test this long.
        embed_resolve_seconds=1.0,
        embed_oembed_max_bytes=64 * 1024,
    )
