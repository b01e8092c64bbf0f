"""The single-process broker: announcements go straight to this process's subscribers."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.realtime.broker import Announcement

# A subscriber this far behind has stalled; dropping is safe because the hub refills from the log.
QUEUE_LIMIT = 10_000


class MemoryBroker:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Announcement]] = set()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        self._subscribers.clear()

    async def publish(self, announcement: Announcement) -> None:
        for queue in self._subscribers:
            if queue.qsize() < QUEUE_LIMIT:
                queue.put_nowait(announcement)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Announcement]]:
        queue: asyncio.Queue[Announcement] = asyncio.Queue()
        self._subscribers.add(queue)

        async def messages() -> AsyncIterator[Announcement]:
            while True:
                yield await queue.get()

        try:
            yield messages()
        finally:
            self._subscribers.discard(queue)
