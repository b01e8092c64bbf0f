from fastapi import APIRouter, status
from pydantic import MISSING

from app.api.deps import AdminDep, IdPath, TokenStoreDep
from app.models import Token
from app.people.roles import Role
from app.schemas import RATE_LIMITED, TokenCreate, TokenCreated, TokenPublic, error_responses

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=RATE_LIMITED)


def to_token_public(token: Token, blogs: list[str] | None = None) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        name=token.name,
        scope=token.scope,
        user_id=token.user_id,
        blogs=blogs or [],
        max_role=token.max_role,  # type: ignore[arg-type]
        prefix=token.prefix,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 413, 415, 422)
)
async def create_token(data: TokenCreate, admin: AdminDep, tokens: TokenStoreDep) -> TokenCreated:
    """Create a token (admin), of a user or a legacy one; its secret is shown only here."""
    blogs = sorted(set(data.blogs)) if data.blogs is not MISSING else []
    max_role: Role | None = data.max_role if data.max_role is not MISSING else None
    token, secret = await tokens.create(
        data.name,
        data.scope if data.scope is not MISSING else None,
        user_id=data.user_id if data.user_id is not MISSING else None,
        blogs=blogs,
        max_role=max_role,
        actor=admin,
    )
    return TokenCreated(**to_token_public(token, blogs).model_dump(), secret=secret)


@router.get("", responses=error_responses(401, 403))
async def read_tokens(_admin: AdminDep, tokens: TokenStoreDep) -> list[TokenPublic]:
    """List tokens (admin), without their secrets."""
    narrowed = await tokens.blog_slugs()
    return [to_token_public(token, narrowed.get(token.id)) for token in await tokens.list()]


@router.delete("/{token_id}", responses=error_responses(401, 403, 404, 409, 422))
async def revoke_token(token_id: IdPath, admin: AdminDep, tokens: TokenStoreDep) -> TokenPublic:
    """Revoke a token (admin) for good; it stops working at once. Not the last admin token."""
    token = await tokens.revoke(token_id, admin)
    return to_token_public(token, (await tokens.blog_slugs()).get(token.id))
