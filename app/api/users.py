from fastapi import APIRouter, status

from app.api.deps import AdminDep, IdPath, UserStoreDep
from app.people.schemas import UserCreate, UserPublic, UserUpdate
from app.people.users import to_user_public
from app.schemas import RATE_LIMITED, error_responses

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=RATE_LIMITED)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 409, 413, 415, 422),
)
async def create_user(data: UserCreate, admin: AdminDep, users: UserStoreDep) -> UserPublic:
    """Create a user (admin); the password is stored as an Argon2id hash only."""
    return to_user_public(await users.create(data, admin))


@router.get("", responses=error_responses(401, 403))
async def read_users(_admin: AdminDep, users: UserStoreDep) -> list[UserPublic]:
    """List users (admin)."""
    return [to_user_public(user) for user in await users.list()]


@router.get("/{user_id}", responses=error_responses(401, 403, 404, 422))
async def read_user(user_id: IdPath, _admin: AdminDep, users: UserStoreDep) -> UserPublic:
    """Read one user (admin)."""
    return to_user_public(await users.get(user_id))


@router.patch("/{user_id}", responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422))
async def update_user(
    user_id: IdPath, data: UserUpdate, admin: AdminDep, users: UserStoreDep
) -> UserPublic:
    """Change a user's name, password or admin flag, or disable it (admin)."""
    return to_user_public(await users.update(user_id, data, admin))
