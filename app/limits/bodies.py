"""ASGI middleware that refuses oversized and non-JSON request bodies before they are read.

A body over the limit is refused from its Content-Length at once; a chunked
body is counted as it streams and refused the moment it passes the limit, so
no request can make the server buffer more than `max_body_bytes`.
"""

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import PayloadTooLarge, UnsupportedMediaType

BODY_METHODS = {"POST", "PUT", "PATCH"}


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _declares_more_than(content_length: str, limit: int) -> bool:
    # ASCII digits only (isdigit() alone takes a Latin-1 superscript, which int() refuses);
    # a number too long for int() is over any limit.
    if not (content_length.isascii() and content_length.isdigit()):
        return False
    return len(content_length) > len(str(limit)) or int(content_length) > limit


class RequestGuards:
    """`own_limits`: paths whose route reads and bounds its body itself (uploads)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        json_prefix: str = "/api/",
        own_limits: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_prefix = json_prefix
        self.own_limits = own_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or (self.own_limits is not None and self.own_limits.match(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        declared = headers.get("content-length")
        if declared is not None and _declares_more_than(declared, self.max_body_bytes):
            response = error_response(self._too_large())
            await response(scope, receive, send)
            return
        has_body = (declared is not None and declared != "0") or "transfer-encoding" in headers
        if (
            scope["path"].startswith(self.json_prefix)
            and has_body
            and not _is_json(headers.get("content-type", ""))
        ):
            response = error_response(UnsupportedMediaType("Send the body as application/json."))
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The body may be at most {self.max_body_bytes} bytes.")

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises only an HTTPException from body reading (anything else
                    # becomes a 400); the handler gives it the code of PayloadTooLarge.
                    raise HTTPException(PayloadTooLarge.status, self._too_large().message)
            return message

        return counted_receive
