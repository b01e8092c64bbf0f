"""A blog's uploaded photos: processed on worker threads, stored, then recorded.

Nothing is stored for a refused upload: every check (multipart, size, format, pixels,
frames, a decodable image) comes before the first rendition is written, and the row only
after every rendition is. A storage failure midway may leave renditions no row names;
they are content-addressed, so they harm nothing and are reused if the same photo comes
again.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.errors import NotFound
from app.media.processing import Limits, ProcessedPhoto, process_photo
from app.media.references import to_uploaded_public
from app.media.storage import MediaStore
from app.media.uploads import Upload
from app.models import Blog, StoredMedia, utc_now
from app.schemas import UploadedMediaPublic, is_slug


class MediaLibrary:
    def __init__(self, database: Database, settings: Settings, store: MediaStore) -> None:
        self.database = database
        self.store = store
        self.max_bytes = settings.media_max_bytes
        self.limits = Limits(
            max_pixels=settings.media_max_pixels, max_frames=settings.media_max_frames
        )
        # Bounded: at most this many photos decoded at once, however many are uploaded.
        self.workers = ThreadPoolExecutor(
            max_workers=settings.media_workers, thread_name_prefix="bulletin-media"
        )

    async def find_blog(self, slug: str) -> Blog:
        """The blog, or NotFound: checked before an upload is read."""
        blog = None
        if is_slug(slug):
            async with self.database.read_session() as session:
                blog = await session.scalar(select(Blog).where(Blog.slug == slug))
        if blog is None:
            raise NotFound(f"There is no blog '{slug}'.")
        return blog

    async def add(self, blog_id: int, slug: str, upload: Upload) -> UploadedMediaPublic:
        """Process, store and record one upload; refusals raise before anything is kept."""
        photo = await self.process_and_store(upload.file)
        async with self.database.write_session() as session:
            if await session.get(Blog, blog_id) is None:
                raise NotFound(f"There is no blog '{slug}'.")
            row = StoredMedia(
                blog_id=blog_id,
                kind="image",
                source_format=photo.source_format,
                source_bytes=upload.size,
                width=photo.width,
                height=photo.height,
                placeholder=photo.placeholder,
                renditions=self._renditions(photo),
                created_at=utc_now(),
            )
            session.add(row)
            await session.flush()
            return to_uploaded_public(row, slug)

    async def process_and_store(self, source: IO[bytes]) -> ProcessedPhoto:
        """Make a photo's renditions on a worker thread and store every one; refusals raise
        before anything is stored. Uploads and embeds' thumbnails both come through here."""
        loop = asyncio.get_running_loop()
        photo = await loop.run_in_executor(self.workers, process_photo, source, self.limits)
        await asyncio.gather(
            *(self.store.put(r.key, r.data, r.content_type) for r in photo.renditions)
        )
        return photo

    def public_renditions(self, photo: ProcessedPhoto) -> list[dict[str, object]]:
        """The renditions as an entry's media shows them (no storage keys)."""
        return [
            {
                "format": r.format,
                "width": r.width,
                "height": r.height,
                "bytes": len(r.data),
                "url": self.store.url(r.key),
            }
            for r in photo.renditions
        ]

    def _renditions(self, photo: ProcessedPhoto) -> list[dict[str, object]]:
        return [
            {
                "format": r.format,
                "width": r.width,
                "height": r.height,
                "bytes": len(r.data),
                "key": r.key,
                "url": self.store.url(r.key),
            }
            for r in photo.renditions
        ]

    async def close(self) -> None:
        self.workers.shutdown(wait=False, cancel_futures=True)
        await self.store.close()
