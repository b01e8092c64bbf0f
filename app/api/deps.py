"""Typed dependencies, so routes read like plain functions."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.db import Database
from app.errors import Forbidden, Unauthorised
from app.models import Blog, Token
from app.publishing import Publisher
from app.queries import find_blog
from app.rendering import Renderer
from app.schemas import ASCII_DIGITS
from app.services import Services
from app.tokens import TokenStore, scope_allows


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


async def get_optional_token(credentials: BearerDep, tokens: TokenStoreDep) -> Token | None:
    """The caller's token when one is sent; a token that is sent but unknown is refused."""
    if credentials is None:
        return None
    token = await tokens.authenticate(credentials.credentials)
    if token is None:
        raise Unauthorised("The token is unknown or revoked.")
    return token


OptionalTokenDep = Annotated[Token | None, Depends(get_optional_token)]


def require_scope(scope: str) -> Callable[[Token | None], Awaitable[Token]]:
    async def check(token: OptionalTokenDep) -> Token:
        if token is None:
            raise Unauthorised("Send 'Authorization: Bearer <token>'.")
        if not scope_allows(token.scope, scope):
            raise Forbidden(f"This needs a token with the '{scope}' scope.")
        return token

    return check


PublishTokenDep = Annotated[Token, Depends(require_scope("publish"))]
AdminTokenDep = Annotated[Token, Depends(require_scope("admin"))]
