"""A newsroom reader registered straight with an app's newsroom hub, collecting its notes."""

import json

from fastapi import FastAPI
from sqlalchemy import select

from app.models import Blog
from app.realtime.frames import Form
from tests.support.factories import SLUG


class NoteCollector:
    """A newsroom reader of a blog, as the newsroom stream registers one: the SSE frames
    the hub writes to it."""

    form = Form.SSE

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, data: bytes | str, receipt: object = None) -> bool:
        self.frames.append(data if isinstance(data, bytes) else data.encode())
        return True

    def close(self, code: object, reason: str) -> None:
        pass

    async def wait_writable(self) -> bool:
        return True

    def notes(self, *event_types: str) -> list[dict]:
        """The notes of these event types (every note if none is named), in order."""
        found = []
        for frame in self.frames:
            head, _, data = frame.partition(b"\ndata: ")
            if not head.startswith(b"event: "):
                continue
            if not event_types or head.removeprefix(b"event: ").decode() in event_types:
                found.append(json.loads(data))
        return found


async def watch_newsroom(app: FastAPI, reader: NoteCollector, slug: str = SLUG) -> None:
    """Register `reader` with the app's newsroom hub as an editor's stream of the blog."""
    async with app.state.services.database.read_session() as session:
        blog_id = await session.scalar(select(Blog.id).where(Blog.slug == slug))
    app.state.services.newsroom.watch(slug, blog_id, reader, None, "editor")
