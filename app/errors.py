"""One family of errors, one JSON shape: `{"error": {"code", "message", "fields"?}}`."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("bulletin")


class BulletinError(Exception):
    """A refusal the client can act on; subclasses fix the status and code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class NotFound(BulletinError):
    status = 404
    code = "not_found"


class Conflict(BulletinError):
    status = 409
    code = "conflict"


class Unauthorised(BulletinError):
    status = 401
    code = "unauthorised"


class Forbidden(BulletinError):
    status = 403
    code = "forbidden"


class InvalidInput(BulletinError):
    status = 422
    code = "invalid_input"


class PayloadTooLarge(BulletinError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(BulletinError):
    status = 415
    code = "unsupported_media_type"


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)


def _field_path(location: tuple[Any, ...]) -> str:
    # Drop the leading "body"/"query"/"path" so names match what the client sent;
    # a problem with the request as a whole is filed under "request".
    parts = [str(part) for part in location[1:]]
    return ".".join(parts) or "request"


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BulletinError)
    async def _bulletin_error(_request: Request, error: BulletinError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return error_response(error.status, error.code, error.message, error.fields, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return error_response(400, "malformed_json", "The request body is not valid JSON.")
        fields = {_field_path(tuple(p["loc"])): p["msg"] for p in problems}
        return error_response(422, "invalid_input", "The request is not valid.", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(error.status_code, "error")
        return error_response(error.status_code, code, str(error.detail), headers=error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal_error", "Something went wrong on our side.")
