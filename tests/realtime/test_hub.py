"""The hub's ordering promise, fed announcements directly: in seq order, once each."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from app.db import Database
from app.metrics import Metrics
from app.publishing import Publisher
from app.realtime.broker import Announcement
from app.realtime.broker.memory import MemoryBroker
from app.realtime.hub import Form, Hub
from app.rendering import Renderer
from app.schemas import BlogCreate, EntryCreate


class CollectingReader:
    """A reader that keeps what it is sent (the hub's reader interface, in memory)."""

    form = Form.TEXT

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.changed = asyncio.Event()

    def write(self, data: bytes | str, receipt: object = None) -> bool:
        message = json.loads(data)
        if message["type"] not in ("hello", "heartbeat"):
            self.seqs.append(message["seq"])
            self.changed.set()
        return True

    def close(self, code: int, reason: str) -> None:
        raise AssertionError(f"closed with {code}: {reason}")

    async def wait_writable(self) -> bool:
        return True

    async def has(self, count: int) -> None:
        while len(self.seqs) < count:
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
async def logged(database_url: str) -> AsyncIterator[tuple[Hub, list[Announcement]]]:
    """A hub (not started: nothing announces but the test) and five events in the log."""
    database = Database(database_url)
    committed: list[Announcement] = []

    publisher = Publisher(database, Renderer(), listeners=[committed.extend])
    await publisher.create_blog(BlogCreate(slug="order", title="Order"))
    hub = Hub(database, MemoryBroker(), Metrics())
    await hub.follow("order")  # the hub follows the blog from seq 0
    for number in range(5):
        await publisher.create_entry("order", EntryCreate(body=f"<p>{number}</p>"))
    try:
        yield hub, committed
    finally:
        await database.dispose()


async def test_announcements_out_of_order_are_delivered_in_order_without_reading_the_log(
    logged: tuple[Hub, list[Announcement]],
) -> None:
    hub, events = logged
    reader = CollectingReader()
    await hub.attach("order", reader, since=None)
    for index in (1, 0, 3, 2, 4, 4, 0):
        hub.receive(events[index])
    assert reader.seqs == [1, 2, 3, 4, 5]
    assert hub.metrics.registry.get_sample_value("bulletin_gap_fills_total") == 0


async def test_a_missing_announcement_is_read_from_the_log(
    logged: tuple[Hub, list[Announcement]],
) -> None:
    hub, events = logged
    reader = CollectingReader()
    await hub.attach("order", reader, since=None)
    hub.receive(events[0])
    hub.receive(events[2])  # seq 2 never comes
    hub.receive(events[4])
    await asyncio.wait_for(reader.has(5), 10)
    assert reader.seqs == [1, 2, 3, 4, 5]
    assert hub.metrics.registry.get_sample_value("bulletin_gap_fills_total") >= 1


async def test_a_doorbell_without_payload_delivers_from_the_log(
    logged: tuple[Hub, list[Announcement]],
) -> None:
    hub, events = logged
    reader = CollectingReader()
    await hub.attach("order", reader, since=None)
    hub.receive(Announcement(events[4].blog, events[4].blog_id, events[4].seq, b""))
    await asyncio.wait_for(reader.has(5), 10)
    assert reader.seqs == [1, 2, 3, 4, 5]
