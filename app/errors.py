"""One family of errors, one JSON shape: `{"error": {"code", "message", "fields"?}}`.

Pure: nothing here imports a web framework, so the write path, the read side and the
CLI raise these without loading one. app/api/errors.py renders them as HTTP answers.
"""

from typing import Any

# How long a client is asked to wait before it retries while the database is away.
DATABASE_RETRY_AFTER_SECONDS = 5


class BulletinError(Exception):
    """A refusal the client can act on; subclasses fix the status and code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.fields)

    def headers(self) -> dict[str, str]:
        """HTTP headers that belong with this refusal."""
        return {}


class MalformedJson(BulletinError):
    code = "malformed_json"


class Unauthorised(BulletinError):
    status = 401
    code = "unauthorised"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(BulletinError):
    status = 403
    code = "forbidden"


class NotFound(BulletinError):
    status = 404
    code = "not_found"


class MethodNotAllowed(BulletinError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(BulletinError):
    status = 408
    code = "request_timeout"


class Gone(BulletinError):
    status = 410
    code = "gone"


class Conflict(BulletinError):
    status = 409
    code = "conflict"


class SinceAheadOfHead(Conflict):
    """A resume point the log never had (a restored database, or a made-up seq)."""

    code = "since_ahead_of_head"


class PayloadTooLarge(BulletinError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(BulletinError):
    status = 415
    code = "unsupported_media_type"


class UrlTooLong(BulletinError):
    status = 414
    code = "url_too_long"


class InvalidInput(BulletinError):
    status = 422
    code = "invalid_input"


class RateLimited(BulletinError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class HeadersTooLarge(BulletinError):
    status = 431
    code = "headers_too_large"


class Unavailable(BulletinError):
    """Something this process depends on does not answer yet; the client may retry."""

    status = 503
    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}


class ServerBusy(Unavailable):
    code = "server_busy"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}
