"""HTTP rendering of the error family: one handler per kind of failure, one JSON shape."""

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from app.caching.validators import ERROR_CACHE_POLICY
from app.db import is_outage
from app.errors import (
    BulletinError,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorised,
    Unavailable,
    UnsupportedMediaType,
    error_body,
)

logger = logging.getLogger("bulletin")

OUTAGE_LOG_SECONDS = 10.0
ERROR_CACHE_CONTROL = {"Cache-Control": ERROR_CACHE_POLICY}

# The code of an HTTPException raised by the framework (routing, body reading), by status.
STATUS_CODES = {
    error.status: error.code
    for error in (
        BulletinError,
        Unauthorised,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidInput,
        RateLimited,
    )
}


def error_response(error: BulletinError) -> JSONResponse:
    """The JSON answer for a refusal, with its headers: also an ASGI app, for middleware."""
    headers = ERROR_CACHE_CONTROL | error.headers()
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _field_path(location: tuple[Any, ...]) -> str:
    # Drop the leading "body"/"query"/"path" so names match what the client sent;
    # a problem with the request as a whole is filed under "request".
    parts = [str(part) for part in location[1:]]
    return ".".join(parts) or "request"


class OutageLog:
    """One line per outage, not one traceback per request: the first failure is logged,
    then at most one line every OUTAGE_LOG_SECONDS with how many more there were."""

    def __init__(self) -> None:
        self.logged_at = -OUTAGE_LOG_SECONDS
        self.unlogged = 0

    def note(self, error: BaseException) -> None:
        now = time.monotonic()
        if now - self.logged_at < OUTAGE_LOG_SECONDS:
            self.unlogged += 1
            return
        more = f" ({self.unlogged} more since the last line)" if self.unlogged else ""
        logger.warning("database unavailable: %s%s", _first_line(error), more)
        self.logged_at = now
        self.unlogged = 0


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _without_trailing_slash(request: Request) -> str | None:
    """The path without its trailing slash, when a route answers that (never redirected to)."""
    path = request.url.path
    if path == "/" or not path.endswith("/"):
        return None
    without = path.rstrip("/")
    scope = {**request.scope, "path": without}
    if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
        return without
    return None


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route answers at this path: Starlette's 405 names only the first
    route's, though a path is often served by several (GET and POST on a collection)."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return ", ".join(
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


def install_error_handlers(app: FastAPI) -> None:
    outages = OutageLog()

    @app.exception_handler(BulletinError)
    async def _bulletin_error(_request: Request, error: BulletinError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return error_response(MalformedJson("The request body is not valid JSON."))
        fields = {_field_path(tuple(p["loc"])): p["msg"] for p in problems}
        return error_response(InvalidInput("The request is not valid.", fields=fields))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(error.status_code, "error")
        message = str(error.detail)
        if error.status_code == 404 and (without := _without_trailing_slash(request)):
            message = f"There is no {request.url.path}; did you mean {without}?"
        headers = ERROR_CACHE_CONTROL | dict(error.headers or {})
        methods = allowed_methods(request) if error.status_code == MethodNotAllowed.status else ""
        if methods:
            headers["Allow"] = methods
        return JSONResponse(
            error_body(code, message),
            status_code=error.status_code,
            headers=headers,
        )

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(OSError)
    async def _infrastructure(_request: Request, error: Exception) -> JSONResponse:
        # Handled here, not by the catch-all below, so the connection stays usable.
        if not is_outage(error):
            logger.exception("unhandled error", exc_info=error)
            return JSONResponse(
                error_body("internal_error", "Something went wrong on our side."),
                status_code=500,
                headers=ERROR_CACHE_CONTROL,
            )
        outages.note(error)
        if isinstance(error, SQLAlchemyError):
            unavailable: Unavailable = DatabaseUnavailable(
                "The database is not available right now; retry shortly."
            )
        else:
            unavailable = Unavailable("A service this server needs did not answer; retry shortly.")
        return error_response(unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return JSONResponse(
            error_body("internal_error", "Something went wrong on our side."),
            status_code=500,
            headers=ERROR_CACHE_CONTROL,
        )
