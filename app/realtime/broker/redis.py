"""Redis pub/sub broker: one channel per installation carries every blog's announcements."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis

from app.installation import Identity
from app.realtime.broker import Announcement, Seal

IDLE_PING_SECONDS = 15


def redis_channel(identity: Identity, topic: str = "events") -> str:
    return f"bulletin:{identity.id}:{topic}"


class RedisBroker:
    def __init__(self, url: str, channel: str, seal: Seal) -> None:
        self.url = url
        self.channel = channel
        self.seal = seal
        self._client: redis.Redis | None = None

    async def connect(self) -> None:
        self._client = redis.Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )

    async def disconnect(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("the Redis broker is not connected")
        return self._client

    async def publish(self, announcement: Announcement) -> None:
        await self.client.publish(self.channel, self.seal.encode(announcement))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Announcement]]:
        # A dedicated connection without a read timeout: the channel may be quiet for hours.
        connection = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)

            async def messages() -> AsyncIterator[Announcement]:
                while True:
                    message = await pubsub.get_message(timeout=IDLE_PING_SECONDS)
                    if message is None:
                        # Quiet for a while: a ping raises if the connection has died.
                        await pubsub.ping()
                    elif message["type"] == "message":
                        opened = self.seal.decode(message["data"])
                        if opened is not None:
                            yield opened

            yield messages()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            await connection.aclose()
