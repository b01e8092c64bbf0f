"""Readers the hub writes to: a bounded buffer each, drained by the connection's own task.

`write` never waits: it queues and returns, or refuses once the buffer passes its
limit and closes the reader with RESUME, so a stalled reader costs bounded memory
and never holds up anyone else.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.realtime.channel import Receipt
from app.realtime.codes import CloseCode
from app.realtime.frames import Form


class BufferedReader:
    """The buffer and its limit; subclasses decide how queued data reaches the socket."""

    form: Form
    # Counted in readers now and in delivery receipts (app/realtime/audience.py).
    counted = True
    # Set on a connection that follows several blogs (app/realtime/multiplex.py).
    follows_many = False

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        # Data, and after an event's data its receipt, counted once the data has been sent.
        self.queue: deque[bytes | str | Receipt] = deque()
        self.buffered = 0
        self.closing: tuple[CloseCode, str] | None = None
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()

    def write(self, data: bytes | str, receipt: Receipt | None = None) -> bool:
        if self.closing is not None:
            return False
        if self.buffered + len(data) > self.limit_bytes:
            self.close(CloseCode.RESUME, "too far behind: reconnect with your last seq")
            return False
        self.queue.append(data)
        if receipt is not None and self.counted:
            self.queue.append(receipt)
        self.buffered += len(data)
        self._wakeup.set()
        return True

    def close(self, code: CloseCode, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self.queue.clear()
            self.buffered = 0
            self._wakeup.set()
            self._drained.set()

    async def wait_writable(self) -> bool:
        while self.closing is None and self.buffered > self.limit_bytes // 2:
            self._drained.clear()
            await self._drained.wait()
        return self.closing is None

    async def batches(self) -> AsyncIterator[list[bytes | str]]:
        """Everything queued, batch by batch, until the reader is closed."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.closing is not None:
                return
            batch = [item for item in self.queue if not isinstance(item, Receipt)]
            receipts = [item for item in self.queue if isinstance(item, Receipt)]
            self.queue.clear()
            yield batch
            for receipt in receipts:
                receipt.delivered += 1
            self.buffered -= sum(len(item) for item in batch)
            self._drained.set()


class WebSocketReader(BufferedReader):
    """A reader on any ASGI server: each message goes out through `send_text`."""

    form = Form.TEXT

    def __init__(self, websocket: WebSocket, limit_bytes: int) -> None:
        super().__init__(limit_bytes)
        self.websocket = websocket

    async def pump(self) -> None:
        """Send queued messages until closed, then close the socket with the reader's code."""
        try:
            async for batch in self.batches():
                for text in batch:
                    # This reader takes Form.TEXT: the hub only ever gives it str.
                    await self.websocket.send_text(text)  # type: ignore[arg-type]
            if self.closing is not None and self.websocket.client_state == WebSocketState.CONNECTED:
                code, reason = self.closing
                # Close reasons are limited to 123 bytes by the protocol.
                await self.websocket.close(code, reason.encode()[:120].decode(errors="ignore"))
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            # However the socket ended, the hub stops writing and any replay stops waiting.
            self.close(CloseCode.GOING_AWAY, "connection lost")


class SseReader(BufferedReader):
    """A Server-Sent Events reader: the response body streams what is queued."""

    form = Form.SSE

    async def stream(self, retry_ms: int) -> AsyncIterator[bytes]:
        # `retry` sets how long EventSource waits before it reconnects with Last-Event-ID.
        yield b"retry: %d\n\n" % retry_ms
        async for batch in self.batches():
            # This reader takes Form.SSE: the hub only ever gives it bytes.
            yield b"".join(batch)  # type: ignore[arg-type]
