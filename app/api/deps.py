"""Typed dependencies, so routes read like plain functions."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.db import Database
from app.errors import Unauthorised
from app.models import Blog
from app.people import permissions, principals
from app.people.memberships import MembershipStore
from app.people.roles import Principal, Role
from app.people.users import UserStore
from app.publishing import Publisher
from app.queries import find_blog
from app.rendering import Renderer
from app.schemas import ASCII_DIGITS
from app.services import Services
from app.tokens import TokenStore


def get_services(request: HTTPConnection) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_database(services: ServicesDep) -> Database:
    return services.database


def get_publisher(services: ServicesDep) -> Publisher:
    return services.publisher


def get_token_store(services: ServicesDep) -> TokenStore:
    return services.tokens


def get_renderer(services: ServicesDep) -> Renderer:
    return services.renderer


DatabaseDep = Annotated[Database, Depends(get_database)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
TokenStoreDep = Annotated[TokenStore, Depends(get_token_store)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]


def get_users(database: DatabaseDep) -> UserStore:
    return UserStore(database)


def get_members(database: DatabaseDep) -> MembershipStore:
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

_bearer = HTTPBearer(auto_error=False, description="A token from `bulletin token create`.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_address(connection: HTTPConnection) -> str | None:
    """The client's address, as the rate limits count it: the connection's peer, or what a
    trusted proxy's X-Forwarded-For named (uvicorn applied BULLETIN_FORWARDED_ALLOW_IPS)."""
    host = connection.client.host if connection.client else None
    return host[:64] if host else None  # as stored in the audit log


async def get_optional_principal(
    request: HTTPConnection,
    credentials: BearerDep,
    tokens: TokenStoreDep,
    database: DatabaseDep,
) -> Principal | None:
    """Who sent the request, when a token is sent; a token that is sent but unknown,
    revoked or of a disabled user is refused (401)."""
    if credentials is None:
        return None
    token = await tokens.authenticate(credentials.credentials)
    if token is None:
        raise Unauthorised("The token is unknown or revoked.")
    async with database.read_session() as session:
        return await principals.for_token(session, token, client_address(request))


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_principal(principal: OptionalPrincipalDep) -> Principal:
    if principal is None:
        raise Unauthorised("Send 'Authorization: Bearer <token>'.")
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
