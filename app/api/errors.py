"""HTTP rendering of the error family: one handler per kind of failure, one JSON shape."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from app.errors import (
    BulletinError,
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorised,
    UnsupportedMediaType,
    error_body,
)

logger = logging.getLogger("bulletin")

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
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers() or None)


def _field_path(location: tuple[Any, ...]) -> str:
    # Drop the leading "body"/"query"/"path" so names match what the client sent;
    # a problem with the request as a whole is filed under "request".
    parts = [str(part) for part in location[1:]]
    return ".".join(parts) or "request"


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
        headers = dict(error.headers or {})
        methods = allowed_methods(request) if error.status_code == MethodNotAllowed.status else ""
        if methods:
            headers["Allow"] = methods
        return JSONResponse(
            error_body(code, str(error.detail)),
            status_code=error.status_code,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return JSONResponse(
            error_body("internal_error", "Something went wrong on our side."), status_code=500
        )
