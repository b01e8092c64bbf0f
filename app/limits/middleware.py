"""ASGI middleware that applies the public limits before a request reaches a route.

Streams (WebSocket, and SSE as a GET) take a stream pass, held until the
connection ends however it ends; every other request counts against the read
limit. Static files, photos (/media/) and the operations endpoints (health, metrics)
are never limited: browsers fetch the first two with every page and probes poll the
latter from one address (/readyz costs no more than /healthz for that: it answers from
a memory of the last database ping, app/api/health.py). An SSE stream past the process's
stream cap is refused with 503 by StreamCapGuard, whether or not the limits are on (the
connections kept for the rest, app/limits/connections.py). WebSocket streams on
Bulletin's own edge never pass through here: the edge asks the same RateLimits
itself (app/realtime/uvicorn_edge.py).
"""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.limits import Refusal
from app.limits.connections import CONNECTIONS_KEY, STREAMS_FULL, streams_full
from app.paths import STREAM
from app.realtime.streams import origin_refusal
from app.services import services_of

# Photos (/media/) come with pages as static files do, one request for each.
UNLIMITED_PREFIXES = ("/static/", "/media/", "/healthz", "/readyz", "/metrics")


def refusal_response(refusal: Refusal) -> JSONResponse:
    """The 429 for a refusal, with `Retry-After`."""
    return error_response(refusal.error())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [bytes(value).decode("latin-1") for key, value in scope["headers"] if key == name]


class StreamCapGuard:
    """Refuses an SSE stream (503) that would take a connection kept for the rest. WebSocket
    handshakes are checked by the HTTP protocol, before they reach any app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connections = scope.get("state", {}).get(CONNECTIONS_KEY)
        if scope["type"] == "http" and connections is not None and STREAM.match(scope["path"]):
            services = services_of(scope)
            if streams_full(connections, services.settings):
                services.metrics.connection_refusals.labels(reason=STREAMS_FULL.code).inc()
                await error_response(STREAMS_FULL)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RateLimitGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path: str = scope.get("path", "")
        if kind not in ("http", "websocket") or path.startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        services = services_of(scope)
        rate_limits = services.rate_limits
        if rate_limits is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = client[0] if client else None
        authorization = _header(scope, b"authorization")
        if STREAM.match(path) and (kind == "websocket" or scope["method"] == "GET"):
            if origin_refusal(services.settings, _headers(scope, b"origin")):
                # The route refuses it; a page that may not stream spends no one's budget.
                await self.app(scope, receive, send)
                return
            admission = await rate_limits.admit_stream(host, authorization)
            if isinstance(admission, Refusal):
                await self._refuse(admission, scope, receive, send)
                return
            try:
                await self.app(scope, receive, send)
            finally:
                admission.release()
            return
        refusal = await rate_limits.admit_read(host, authorization)
        if refusal is not None:
            await self._refuse(refusal, scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, refusal: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get(
            "extensions", {}
        ):
            # A server without the denial-response extension can only close (HTTP 403).
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.message[:120]})
            return
        await refusal_response(refusal)(scope, receive, send)
