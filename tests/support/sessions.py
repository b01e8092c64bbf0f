"""Signing in as the newsroom page does (the session cookie and its CSRF token), and reading
a stream of Server-Sent Events as EventSource would."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from app.models import SignInSession, utc_now
from tests.support.people import PASSWORD

SESSION = "/api/v1/session"
COOKIE = "bulletin_session"
SECURE_COOKIE = "__Host-bulletin_session"


@dataclass(frozen=True)
class SignedIn:
    """What a browser holds after signing in: the cookie, and the CSRF token it was told."""

    cookie: str
    secret: str
    csrf_token: str
    origin: str
    body: dict[str, Any]

    @property
    def cookie_header(self) -> dict[str, str]:
        """The cookie as a browser sends it (an explicit header wins over a client's jar)."""
        return cookie_header(self.cookie, self.secret)

    @property
    def page_headers(self) -> dict[str, str]:
        """What the page sends with a request that changes something."""
        return {"Origin": self.origin, "X-CSRF-Token": self.csrf_token}


def cookie_header(name: str, value: str) -> dict[str, str]:
    return {"Cookie": f"{name}={value}"}


def origin_of(client: httpx.AsyncClient) -> str:
    url = client.base_url
    port = "" if url.port in (None, 80, 443) else f":{url.port}"
    return f"{url.scheme}://{url.host}{port}"


async def sign_in(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD, cookie: str = COOKIE
) -> SignedIn:
    """Sign in with the client (which keeps the cookie, as a browser does)."""
    response = await client.post(
        SESSION, json={"login": login, "password": password}, headers={"Origin": origin_of(client)}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return SignedIn(cookie, response.cookies[cookie], body["csrf_token"], origin_of(client), body)


async def set_session_times(app: FastAPI, **times: datetime) -> None:
    """Move every session's stored times (created_at, last_seen_at, expires_at)."""
    async with app.state.services.database.write_session() as session:
        await session.execute(update(SignInSession).values(**times))


def ago(seconds: float) -> datetime:
    return utc_now() - timedelta(seconds=seconds)


@dataclass
class SseMessage:
    event: str
    id: str | None
    data: dict[str, Any]


@dataclass
class SseStream:
    """A stream of Server-Sent Events read in the background; `status` and `headers` are
    those of its answer, `error` the JSON of a refusal."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    messages: list[SseMessage] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _queue: asyncio.Queue[SseMessage] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 10, *, heartbeats: bool = False) -> SseMessage:
        """The next message (heartbeats skipped unless asked for)."""
        while True:
            message = await asyncio.wait_for(self._queue.get(), timeout)
            if heartbeats or message.event != "heartbeat":
                return message

    async def until(self, holds: Callable[[SseMessage], bool], timeout: float = 10) -> SseMessage:
        """The first next message (heartbeats included) of which `holds` is true."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.next(timeout, heartbeats=True)
                if holds(message):
                    return message

    def of_type(self, event: str) -> list[SseMessage]:
        return [message for message in self.messages if message.event == event]


@contextlib.asynccontextmanager
async def sse_stream(
    url: str, *, headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None
) -> AsyncIterator[SseStream]:
    """Open an SSE stream and read it until the context ends (or the server ends it)."""
    stream = SseStream()
    opened = asyncio.Event()

    async def read() -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=30, cookies=cookies) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                stream.status = response.status_code
                stream.headers = dict(response.headers)
                if response.status_code != 200:
                    stream.error = json.loads(await response.aread())
                    opened.set()
                    return
                opened.set()
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                        continue
                    if "data" in fields:
                        message = SseMessage(
                            fields.get("event", "message"),
                            fields.get("id"),
                            json.loads(fields["data"]),
                        )
                        stream.messages.append(message)
                        stream._queue.put_nowait(message)
                    fields = {}
        finally:
            opened.set()
            stream.ended.set()

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(opened.wait(), 10)
        if task.done():
            task.result()  # a failure to connect is the test's failure
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
