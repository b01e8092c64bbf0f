"""Media tests: the app on a fresh database of each kind, keeping its photos in tmp_path."""

from pathlib import Path

import pytest

from app.config import Settings
from tests.support.factories import ADMIN_TOKEN


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def settings(database_url: str, media_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        media_dir=media_dir,
    )
