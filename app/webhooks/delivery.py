"""One delivery attempt: resolve the target safely, sign the event, POST it, classify the answer.

The worker (app/webhooks/worker.py) decides what to send and records what happened;
this module only sends. Nothing here raises for a receiver's faults: every way an
attempt can end is an `Outcome`.
"""

import asyncio
import random
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from app import __version__
from app.config import Settings
from app.models import utc_now
from app.webhooks.signing import SecretBox, SecretUnreadable, message_id, signature_headers
from app.webhooks.targets import TargetRefused, resolve_target

ERROR_CHARS = 500
# What is read of a receiver's answer before the connection is dropped instead.
MAX_RESPONSE_BYTES = 64 * 1024


def retry_delay(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after the nth failure in a row: doubling from `base` up to `cap`,
    less a random part of up to half, so failing webhooks do not retry in step."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 60))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a webhook's next event goes and the secret it is signed with, as last read."""

    url: str
    secret_ciphertext: bytes


class Sender:
    """Sends signed events over HTTP with the configured timeouts and target rules."""

    def __init__(self, settings: Settings, box: SecretBox) -> None:
        self.box = box
        self.allow_private = settings.webhook_allow_private_targets
        self.attempt_seconds = (
            settings.webhook_connect_timeout_seconds + settings.webhook_read_timeout_seconds
        )
        self._timeout = httpx.Timeout(
            connect=settings.webhook_connect_timeout_seconds,
            read=settings.webhook_read_timeout_seconds,
            write=settings.webhook_read_timeout_seconds,
            pool=settings.webhook_connect_timeout_seconds,
        )
        self._tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        # Reading the CA bundle is blocking file work: once, off the event loop.
        self._tls = await asyncio.to_thread(httpx.create_ssl_context, trust_env=False)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client for one turn of one webhook: redirects and proxies never followed."""
        async with httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            verify=self._tls or True,
            headers={"user-agent": f"Bulletin-Webhooks/{__version__}"},
        ) as client:
            yield client

    async def attempt(
        self,
        client: httpx.AsyncClient,
        webhook_id: int,
        destination: Destination,
        seq: int,
        payload: bytes,
    ) -> Outcome:
        """POST one event, signed, and say how it went. Never raises for the receiver's faults."""
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            secret = self.box.open(destination.secret_ciphertext)
            async with asyncio.timeout(self.attempt_seconds):
                target = await resolve_target(destination.url, allow_private=self.allow_private)
                headers = {
                    "content-type": "application/json",
                    "bulletin-seq": str(seq),
                    **signature_headers(secret, message_id(webhook_id, seq), utc_now(), payload),
                }
                if target.host_header is not None:
                    headers["host"] = target.host_header
                extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
                async with client.stream(
                    "POST",
                    target.connect_url,
                    content=payload,
                    headers=headers,
                    extensions=extensions,
                ) as response:
                    status_code = response.status_code
                    await _drain(response)
        except SecretUnreadable as unreadable:
            error = f"{unreadable} (was the key changed?)"
        except TargetRefused as refused:
            error = f"refused: {refused}"
        except (TimeoutError, httpx.TimeoutException):
            error = (
                f"no answer in time (connect {self._timeout.connect}s, read {self._timeout.read}s)"
            )
        except httpx.HTTPError as failure:
            error = (
                f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            )
        if error is None and status_code is not None and not 200 <= status_code < 300:
            error = f"the endpoint answered {status_code}"
            if 300 <= status_code < 400:
                error += " (redirects are not followed)"
        return Outcome(
            delivered=error is None,
            status_code=status_code,
            error=error[:ERROR_CHARS] if error else None,
            duration_ms=round((time.monotonic() - started) * 1000),
        )


async def _drain(response: httpx.Response) -> None:
    """Read a short answer so the connection can be reused; drop a long one unread."""
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > MAX_RESPONSE_BYTES:
            return
