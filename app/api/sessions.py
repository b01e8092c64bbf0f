"""Signing in to the newsroom page: `POST`, `GET` and `DELETE /api/v1/session`.

The session lives in a cookie (`bulletin_session`; `__Host-bulletin_session` over https):
HttpOnly, so no script reads it; SameSite=Strict, so a browser sends it with no request that
another site starts, not even a link followed to here (the newsroom page is static HTML that
signs itself in with a same-site fetch, so Strict costs it nothing); Secure when readers come
over https (BULLETIN_PUBLIC_BASE_URL) or the request did; Path=/. Tools keep using tokens.
"""

import math
from datetime import datetime

from fastapi import APIRouter, Request, Response, status

from app.api.deps import (
    ServicesDep,
    SessionEnded,
    check_origin,
    client_address,
    cookie_is_secure,
    session_cookie_name,
    session_of,
)
from app.api.me import describe
from app.errors import RateLimited, Unauthorised
from app.models import utc_now
from app.people.schemas import SessionPublic, SignIn
from app.people.sessions import SignedIn, SignInFailed, csrf_token
from app.schemas import RATE_LIMITED, error_responses
from app.services import Services

router = APIRouter(prefix="/api/v1/session", tags=["session"], responses=RATE_LIMITED)
# The answers carry the CSRF token: never kept by a cache.
NO_STORE = "no-store"


async def _describe(services: Services, signed_in: SignedIn, secret: str) -> SessionPublic:
    async with services.database.read_session() as session:
        me = await describe(signed_in.principal, session)
    return SessionPublic(
        **me.model_dump(),
        csrf_token=csrf_token(secret),
        expires_at=signed_in.expires_at,
        idle_expires_at=signed_in.idle_expires_at,
    )


def _max_age(expires_at: datetime) -> int:
    return max(0, math.ceil((expires_at - utc_now()).total_seconds()))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 413, 415, 422),
)
async def sign_in(
    data: SignIn, request: Request, response: Response, services: ServicesDep
) -> SessionPublic:
    """Sign in: sets the session cookie; answers who is signed in and the CSRF token.

    A wrong password, an unknown login and a disabled user get the same 401
    `sign_in_failed`; too many attempts for a login or from an address get 429
    `rate_limited` with `Retry-After`. A page on another origin is refused (403
    `csrf_failed`).
    """
    base = services.settings.public_base_url
    check_origin(request, base, required=False)
    name = session_cookie_name(request, base)
    try:
        signed_in, secret = await services.sessions.sign_in(
            data.login,
            data.password.get_secret_value(),
            client_address(request),
            replacing=request.cookies.get(name),
        )
    except SignInFailed:
        services.metrics.sign_in_refusals.labels(reason="wrong_password").inc()
        raise
    except RateLimited:
        services.metrics.sign_in_refusals.labels(reason="locked_out").inc()
        raise
    response.set_cookie(
        name,
        secret,
        max_age=_max_age(signed_in.expires_at),
        path="/",
        secure=cookie_is_secure(request, base),
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = NO_STORE
    return await _describe(services, signed_in, secret)


@router.get("", responses=error_responses(401))
async def read_session(
    request: Request, response: Response, services: ServicesDep
) -> SessionPublic:
    """Who is signed in with this browser's session cookie, and the session's CSRF token."""
    cookie = await session_of(request, services)
    if cookie is None:
        raise Unauthorised("Not signed in: POST /api/v1/session with a login and password.")
    name, secret, signed_in = cookie
    if signed_in is None:
        raise SessionEnded("Your session has ended: sign in again.", cookie=name)
    response.headers["Cache-Control"] = NO_STORE
    return await _describe(services, signed_in, secret)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 403))
async def sign_out(request: Request, services: ServicesDep) -> Response:
    """Sign out: ends the session (needs `Origin` and `X-CSRF-Token`) and drops its cookie."""
    cookie = await session_of(request, services)
    if cookie is None:
        raise Unauthorised("Not signed in.")
    name, secret, signed_in = cookie
    if signed_in is None:
        raise SessionEnded("Your session had ended already.", cookie=name)
    await services.sessions.sign_out(secret, signed_in.principal)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    base = services.settings.public_base_url
    response.delete_cookie(
        name, path="/", secure=cookie_is_secure(request, base), httponly=True, samesite="strict"
    )
    return response
