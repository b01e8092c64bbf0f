"""Where renditions are kept, behind one small interface: `put` a content-addressed object
(writing the same key twice is harmless: same key, same bytes) and say at which URL
readers fetch it. `local` keeps files under BULLETIN_MEDIA_DIR and this server serves
them at /media/; `s3` puts them in an S3-compatible bucket that readers fetch from. Each
backend lives in its own module, imported only when chosen.
"""

import re
from typing import Protocol

from app.config import Settings
from app.errors import Unavailable

# A content address: the SHA-256 of the bytes, then the extension.
KEY = re.compile(r"^[0-9a-f]{64}\.(?:webp|jpg)$")
# Content-addressed: a key's bytes never change, so anyone may keep them for a year.
IMMUTABLE = "public, max-age=31536000, immutable"


class MediaStorageUnavailable(Unavailable):
    code = "media_storage_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class MediaStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store the object; raises MediaStorageUnavailable when the storage fails."""

    def url(self, key: str) -> str:
        """Where readers fetch it: a path on this server, or an absolute URL."""

    async def close(self) -> None: ...


def create_store(settings: Settings) -> MediaStore:
    """The backend BULLETIN_MEDIA_STORAGE names."""
    if settings.media_storage == "s3":
        from app.media.storage.s3 import S3Store

        return S3Store(settings)
    from app.media.storage.local import LocalStore

    return LocalStore(settings.media_dir)
