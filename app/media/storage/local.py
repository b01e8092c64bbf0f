"""Renditions as files under one directory, for a single machine; /media/{key} serves them.

Files are spread over 256 subdirectories by their first two hex digits, written to a
temporary name and renamed into place, so a reader never sees half a file.
"""

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from app.media.storage import KEY, MediaStorageUnavailable

logger = logging.getLogger("bulletin.media")

URL_PREFIX = "/media/"


class LocalStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path | None:
        """The file of a key, or None for anything that is not a key."""
        if not KEY.fullmatch(key):
            return None
        return self.directory / key[:2] / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        if path is None:
            raise ValueError(f"not a content address: {key!r}")
        try:
            await asyncio.to_thread(_write_once, path, data)
        except OSError as error:
            logger.warning("media directory %s: %s", self.directory, error)
            raise MediaStorageUnavailable(
                "The photo could not be stored right now; retry shortly."
            ) from error

    def url(self, key: str) -> str:
        return URL_PREFIX + key

    async def close(self) -> None:
        return None


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return  # content-addressed: the same key holds the same bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
