from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app import caching
from app.api.deps import (
    BlogDep,
    DatabaseDep,
    IfMatchHeader,
    OptionalPrincipalDep,
    PrincipalDep,
    PublisherDep,
    role_on_blog,
)
from app.caching import BlogVersion, Representation
from app.cursors import BLOG_CURSOR_PATTERN
from app.models import Blog, utc_now
from app.people.roles import Principal
from app.people.schemas import BlogSettingsPublic, BlogSettingsUpdate
from app.preconditions import blog_tag, parse_if_match
from app.publishing import to_blog_settings
from app.queries import blogs_version, list_blogs, to_blog_public
from app.schemas import (
    ASCII_DIGITS,
    OPTIONAL_TOKEN,
    RATE_LIMITED,
    BlogCreate,
    BlogPublic,
    BlogsPublic,
    BlogUpdate,
    error_responses,
)

router = APIRouter(prefix="/api/v1/blogs", tags=["blogs"], responses=RATE_LIMITED)
WRITE_ERRORS = error_responses(400, 401, 403, 409, 413, 415, 422)
# Last-Modified of an empty list of blogs.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
async def create_blog(
    data: BlogCreate, principal: PrincipalDep, publisher: PublisherDep
) -> BlogPublic:
    """Create a live blog (admin)."""
    return await publisher.create_blog(data, principal)


@router.get(
    "",
    response_model=BlogsPublic,
    responses={**caching.NOT_MODIFIED_RESPONSE, **error_responses(400, 422)},
)
async def read_blogs(
    request: Request,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100), ASCII_DIGITS] = 20,
    before: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page",
            json_schema_extra={"pattern": BLOG_CURSOR_PATTERN},
        ),
    ] = None,
) -> Response:
    """List blogs, newest first."""
    async with database.read_session() as session:
        # Every blog's state at once: a new blog or any change to one gives a new ETag.
        listing = await blogs_version(session)
        version = BlogVersion(
            seq=listing.total_seq,
            live=True,
            changed_at=listing.changed_at or NEVER,
            epoch=f"{listing.count}.{listing.newest_id}",
        )
        now = utc_now()
        checked = caching.validators(version, caching.request_url(request.scope))
        if caching.is_not_modified(request, checked, now=now):
            return caching.not_modified(checked, now=now)
        items, next_cursor = await list_blogs(session, limit=limit, before=before)
    body = BlogsPublic(items=items, next_cursor=next_cursor).model_dump_json().encode()
    return caching.full(Representation(body, "application/json"), checked, now=now)


@router.get(
    "/{slug}",
    response_model=BlogPublic,
    responses={**caching.NOT_MODIFIED_RESPONSE, **error_responses(401, 404, 422)},
    openapi_extra=OPTIONAL_TOKEN,
)
async def read_blog(slug: str, request: Request, principal: OptionalPrincipalDep) -> Response:
    """Read one blog, with its head `seq` and pinned entry."""

    async def build(session: AsyncSession, blog: Blog) -> Representation:
        public = await to_blog_public(session, blog)
        tags.append(blog_tag(blog.version))
        return Representation(public.model_dump_json().encode(), "application/json")

    tags: list[str] = []
    if principal is None:
        return await caching.respond(request, slug, build)
    # With a token: the caller's own copy, whose ETag is the blog's version for If-Match.
    answer = await caching.respond(
        request, slug, build, vary="Authorization", private_to_caller=True
    )
    answer.headers["ETag"] = tags[0]
    return answer


@router.patch("/{slug}", responses=error_responses(400, 401, 403, 404, 409, 412, 413, 415, 422))
async def update_blog(
    slug: str,
    data: BlogUpdate,
    response: Response,
    principal: PrincipalDep,
    publisher: PublisherDep,
    if_match: IfMatchHeader = None,
) -> BlogPublic:
    """Change a blog (owner); end or reopen its coverage with `status` (editor)."""
    public = await publisher.update_blog(slug, data, principal, parse_if_match(if_match))
    response.headers["ETag"] = blog_tag(public.version)
    return public


MemberDep = Annotated[Principal, Depends(role_on_blog("contributor", "Reading a blog's settings"))]


@router.get("/{slug}/settings", responses=error_responses(401, 403, 404, 422))
async def read_blog_settings(blog: BlogDep, _member: MemberDep) -> BlogSettingsPublic:
    """A blog's newsroom settings (members); never part of a public answer."""
    return to_blog_settings(blog)


@router.patch("/{slug}/settings", responses=error_responses(400, 401, 403, 404, 413, 415, 422))
async def update_blog_settings(
    slug: str, data: BlogSettingsUpdate, principal: PrincipalDep, publisher: PublisherDep
) -> BlogSettingsPublic:
    """Change a blog's newsroom settings (owner): whether contributors publish directly."""
    return await publisher.update_blog_settings(slug, data, principal)
