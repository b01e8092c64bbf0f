from fastapi import APIRouter, status

from app.api.deps import AdminTokenDep, IdPath, TokenStoreDep
from app.models import Token
from app.schemas import RATE_LIMITED, TokenCreate, TokenCreated, TokenPublic, error_responses

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=RATE_LIMITED)


def to_token_public(token: Token) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        name=token.name,
        scope=token.scope,
        prefix=token.prefix,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 413, 415, 422)
)
async def create_token(
    data: TokenCreate, _admin: AdminTokenDep, tokens: TokenStoreDep
) -> TokenCreated:
    """Create a token (admin); its secret is shown in this answer only."""
    token, secret = await tokens.create(data.name, data.scope)
    return TokenCreated(**to_token_public(token).model_dump(), secret=secret)


@router.get("", responses=error_responses(401, 403))
async def read_tokens(_admin: AdminTokenDep, tokens: TokenStoreDep) -> list[TokenPublic]:
    """List tokens (admin), without their secrets."""
    return [to_token_public(token) for token in await tokens.list()]


@router.delete("/{token_id}", responses=error_responses(401, 403, 404, 409, 422))
async def revoke_token(
    token_id: IdPath, _admin: AdminTokenDep, tokens: TokenStoreDep
) -> TokenPublic:
    """Revoke a token (admin) for good; it stops working at once. Not the last admin token."""
    return to_token_public(await tokens.revoke(token_id))
