from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import AdminTokenDep, BlogDep, PublisherDep, ReadSessionDep
from app.queries import list_blogs, to_blog_public
from app.schemas import BlogCreate, BlogPublic, BlogsPublic, BlogUpdate, error_responses

router = APIRouter(prefix="/api/v1/blogs", tags=["blogs"])
WRITE_ERRORS = error_responses(400, 401, 403, 409, 413, 415, 422)


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
async def create_blog(
    data: BlogCreate, _token: AdminTokenDep, publisher: PublisherDep
) -> BlogPublic:
    """Create a live blog (admin)."""
    return await publisher.create_blog(data)


@router.get("", responses=error_responses(400, 422))
async def read_blogs(
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> BlogsPublic:
    """List blogs, newest first."""
    items, next_cursor = await list_blogs(session, limit=limit, before=before)
    return BlogsPublic(items=items, next_cursor=next_cursor)


@router.get("/{slug}", responses=error_responses(404, 422))
async def read_blog(blog: BlogDep, session: ReadSessionDep) -> BlogPublic:
    """Read one blog, with its head `seq` and pinned entry."""
    return await to_blog_public(session, blog)


@router.patch("/{slug}", responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422))
async def update_blog(
    slug: str, data: BlogUpdate, _token: AdminTokenDep, publisher: PublisherDep
) -> BlogPublic:
    """Change a blog (admin); `status: "ended"` ends its coverage."""
    return await publisher.update_blog(slug, data)
