from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from app.api.deps import BlogDep, IdPath, MembershipStoreDep, role_on_blog
from app.people.roles import Principal
from app.people.schemas import MemberPublic, MemberUpdate
from app.schemas import RATE_LIMITED, error_responses

router = APIRouter(prefix="/api/v1/blogs/{slug}/members", tags=["members"], responses=RATE_LIMITED)
OwnerDep = Annotated[Principal, Depends(role_on_blog("owner", "Managing members"))]
READ_ERRORS = error_responses(401, 403, 404, 422)


@router.get("", responses=READ_ERRORS)
async def read_members(
    blog: BlogDep, _owner: OwnerDep, members: MembershipStoreDep
) -> list[MemberPublic]:
    """A blog's members and their roles (owner)."""
    return await members.list(blog.slug)


@router.get("/{user_id}", responses=READ_ERRORS)
async def read_member(
    user_id: IdPath, blog: BlogDep, _owner: OwnerDep, members: MembershipStoreDep
) -> MemberPublic:
    """One member's role (owner)."""
    return await members.get(blog.slug, user_id)


@router.put(
    "/{user_id}",
    responses={
        201: {"model": MemberPublic, "description": "The user is a new member."},
        **error_responses(400, 401, 403, 404, 413, 415, 422),
    },
)
async def put_member(
    user_id: IdPath,
    data: MemberUpdate,
    response: Response,
    blog: BlogDep,
    owner: OwnerDep,
    members: MembershipStoreDep,
) -> MemberPublic:
    """Give a user a role on the blog (owner): 201 for a new member, 200 for a change."""
    member, created = await members.put(blog.slug, user_id, data.role, owner)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return member


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=READ_ERRORS)
async def delete_member(
    user_id: IdPath, blog: BlogDep, owner: OwnerDep, members: MembershipStoreDep
) -> None:
    """Take a user's role on the blog away (owner); its tokens stop acting there at once."""
    await members.remove(blog.slug, user_id, owner)
