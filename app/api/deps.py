"""Typed dependencies, so routes read like plain functions.

Who sent a request: a token in `Authorization: Bearer` (tools), or else the newsroom page's
session cookie, and never a token from a cookie or a query string. A request that a cookie
authenticates and that may change something (any method but GET, HEAD and OPTIONS) must
also prove that this server's own page sent it (`check_csrf`): its `Origin` is this
server's, and `X-CSRF-Token` is its session's token. Otherwise it is refused with 403
`csrf_failed` before the route runs, so nothing is written.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.config import web_origin
from app.db import Database
from app.errors import Forbidden, Unauthorised
from app.models import Blog
from app.people import permissions, principals
from app.people.memberships import MembershipStore
from app.people.roles import Principal, Role
from app.people.sessions import SessionStore, SignedIn, csrf_matches
from app.people.users import UserStore
from app.preconditions import IF_MATCH_PATTERN
from app.publishing import Publisher
from app.queries import find_blog
from app.rendering import Renderer
from app.schemas import ASCII_DIGITS
from app.services import Services
from app.tokens import TokenStore


def services_of(connection: HTTPConnection) -> Services:
    services: Services = connection.app.state.services
    return services


async def get_services(request: HTTPConnection) -> Services:
    # Every dependency here is `async def`, though none awaits: FastAPI runs a plain `def`
    # dependency in its thread pool, a thread hop per dependency per request.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_database(services: ServicesDep) -> Database:
    return services.database


async def get_publisher(services: ServicesDep) -> Publisher:
    return services.publisher


async def get_token_store(services: ServicesDep) -> TokenStore:
    return services.tokens


async def get_renderer(services: ServicesDep) -> Renderer:
    return services.renderer


DatabaseDep = Annotated[Database, Depends(get_database)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
TokenStoreDep = Annotated[TokenStore, Depends(get_token_store)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]


async def get_users(database: DatabaseDep) -> UserStore:
    return UserStore(database)


async def get_members(database: DatabaseDep) -> MembershipStore:
    return MembershipStore(database)


UserStoreDep = Annotated[UserStore, Depends(get_users)]
MembershipStoreDep = Annotated[MembershipStore, Depends(get_members)]


async def get_read_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with database.read_session() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def get_blog_or_404(slug: str, session: ReadSessionDep) -> Blog:
    return await find_blog(session, slug)


BlogDep = Annotated[Blog, Depends(get_blog_or_404)]
# An entry's, webhook's or token's id in a path: one that names nothing is a 404.
IdPath = Annotated[int, Path(ge=0), ASCII_DIGITS]
# An edit's precondition (app/preconditions.py): the ETag the caller read.
IfMatchHeader = Annotated[
    str | None,
    # A header is text or absent: the schema says so, without the null of `| None`.
    WithJsonSchema({"type": "string", "pattern": IF_MATCH_PATTERN}),
    Header(
        description='The ETag the caller read ("entry-12-v3", "blog-v2") or "*": the change '
        "is refused with 412, writing nothing, if it is no longer current. Without it the "
        "last write wins.",
    ),
]

_bearer = HTTPBearer(auto_error=False, description="A token from `bulletin token create`.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_address(connection: HTTPConnection) -> str | None:
    """The client's address, as the rate limits count it: the connection's peer, or what a
    trusted proxy's X-Forwarded-For named (uvicorn applied BULLETIN_FORWARDED_ALLOW_IPS)."""
    host = connection.client.host if connection.client else None
    return host[:64] if host else None  # as stored in the audit log


SESSION_COOKIE = "bulletin_session"
# Over https the cookie is `__Host-` prefixed: browsers then take it only with Secure, for
# this host alone and Path=/, so no other host (a sibling subdomain) can plant or widen it.
SECURE_SESSION_COOKIE = "__Host-bulletin_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class SessionEnded(Unauthorised):
    """A session cookie was sent, but names no live session: the answer also drops it."""

    code = "session_ended"

    def __init__(self, message: str, *, cookie: str) -> None:
        super().__init__(message)
        self.cookie = cookie

    def headers(self) -> dict[str, str]:
        secure = "; Secure" if self.cookie == SECURE_SESSION_COOKIE else ""
        return {
            **super().headers(),
            "Set-Cookie": f"{self.cookie}=; HttpOnly; SameSite=strict; Path=/; Max-Age=0{secure}",
        }


async def get_sessions(services: ServicesDep) -> SessionStore:
    return services.sessions


SessionStoreDep = Annotated[SessionStore, Depends(get_sessions)]


def cookie_is_secure(connection: HTTPConnection, public_base_url: str) -> bool:
    """Whether the session cookie is `Secure`: readers come over https, or this one did."""
    return public_base_url.lower().startswith("https:") or connection.url.scheme in (
        "https",
        "wss",
    )


def session_cookie_name(connection: HTTPConnection, public_base_url: str) -> str:
    secure = cookie_is_secure(connection, public_base_url)
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def own_origins(connection: HTTPConnection, public_base_url: str) -> set[str]:
    """The origins whose pages are this server's: that of BULLETIN_PUBLIC_BASE_URL, and the
    one this request was served under (its scheme and Host). The second is safe to trust:
    the session cookie is host-only, so a browser sends it only to the host that set it,
    and a page on another origin that makes it do so still sends its own Origin."""
    origins = {web_origin(public_base_url)}
    host = connection.headers.get("host")
    if host:
        scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
        origins.add(web_origin(f"{scheme}://{host}"))
    return {origin for origin in origins if origin and origin != "null"}


def check_origin(connection: HTTPConnection, public_base_url: str, *, required: bool) -> None:
    """Refuse (403 csrf_failed) a request whose Origin is not this server's, or that sends
    none when `required`."""
    sent = connection.headers.getlist("origin")
    if not sent and not required:
        return
    if len(sent) != 1 or web_origin(sent[0]) not in own_origins(connection, public_base_url):
        shown = ", ".join(sent)[:100] or "none"
        raise CsrfFailed(f"This request must come from this server's own pages (Origin: {shown}).")


def check_csrf(connection: HTTPConnection, public_base_url: str, secret: str) -> None:
    """A cookie-authenticated request that may change something: this server's Origin and
    the session's CSRF token, or 403 csrf_failed."""
    check_origin(connection, public_base_url, required=True)
    if not csrf_matches(secret, connection.headers.get(CSRF_HEADER)):
        raise CsrfFailed(
            f"Send the session's CSRF token in {CSRF_HEADER} (GET /api/v1/session answers it)."
        )


async def session_of(
    connection: HTTPConnection, services: Services, *, check: bool = True
) -> tuple[str, str, SignedIn | None] | None:
    """The session cookie of a request, if it sent one: the cookie's name, its secret and
    the live session it names (None if it names none). With `check`, a request that may
    change something must pass `check_csrf` first."""
    base = services.settings.public_base_url
    name = session_cookie_name(connection, base)
    secret = connection.cookies.get(name)
    if not secret:
        return None
    method = connection.scope.get("method", "GET")
    if check and method not in SAFE_METHODS:
        check_csrf(connection, base, secret)
    signed_in = await services.sessions.authenticate(secret, client_address(connection))
    return name, secret, signed_in


async def get_optional_principal(
    request: HTTPConnection,
    credentials: BearerDep,
    tokens: TokenStoreDep,
    database: DatabaseDep,
    services: ServicesDep,
) -> Principal | None:
    """Who sent the request: the token it sends, else its session cookie. A token that is
    sent but unknown, revoked or of a disabled user is refused (401); a cookie that names no
    live session makes the request anonymous here (`get_principal` refuses it)."""
    if credentials is None:
        cookie = await session_of(request, services)
        if cookie is None:
            return None
        name, _secret, signed_in = cookie
        if signed_in is None:
            request.state.ended_session_cookie = name
            return None
        return signed_in.principal
    async with database.read_session() as session:  # one transaction for the token and its user
        found = await tokens.find_narrowed(session, credentials.credentials)
        if found is None:
            raise Unauthorised("The token is unknown or revoked.")
        token, blog_ids = found
        return await principals.for_token(session, token, client_address(request), blog_ids)


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_principal(request: HTTPConnection, principal: OptionalPrincipalDep) -> Principal:
    if principal is None:
        cookie = getattr(request.state, "ended_session_cookie", None)
        if cookie is not None:
            raise SessionEnded(
                "Your session has ended (signed out, expired or revoked): sign in again.",
                cookie=cookie,
            )
        raise Unauthorised("Send 'Authorization: Bearer <token>', or sign in.")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep) -> Principal:
    permissions.require_admin(principal)
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]


def role_on_blog(role: Role, what: str) -> Callable[[Principal, Blog], Awaitable[Principal]]:
    """A dependency: the caller, who must hold `role` on the blog of the path (403 if not)."""

    async def check(principal: PrincipalDep, blog: BlogDep) -> Principal:
        permissions.require_role(principal, blog, role, what)
        return principal

    return check
