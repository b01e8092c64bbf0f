from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import caching
from app.caching import Representation
from app.errors import SinceAheadOfHead
from app.models import MAX_INT, Blog
from app.queries import event_payloads_since
from app.schemas import ASCII_DIGITS, RATE_LIMITED, EventsPublic, error_responses

router = APIRouter(prefix="/api/v1/blogs/{slug}/events", tags=["events"], responses=RATE_LIMITED)


@router.get(
    "",
    response_model=EventsPublic,
    responses={**caching.NOT_MODIFIED_RESPONSE, **error_responses(404, 409, 422)},
)
async def read_events(
    slug: str,
    request: Request,
    since: Annotated[
        int,
        Query(ge=0, le=MAX_INT, description="The last seq you have; 0 for all"),
        ASCII_DIGITS,
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000), ASCII_DIGITS] = 100,
) -> Response:
    """The change log after `since`, oldest first: how a third party stays exactly in step."""

    async def build(session: AsyncSession, blog: Blog) -> Representation:
        if since > blog.head_seq:
            raise SinceAheadOfHead(
                f"since={since} is ahead of this blog's newest seq {blog.head_seq}; "
                "start again from 0.",
            )
        events = await event_payloads_since(session, blog.id, since, limit)
        next_since = events[-1][0] if events else since
        # The events' stored wire bytes go out as they are: serialised once, when written.
        body = b"".join(
            [
                b'{"blog":"',
                blog.slug.encode(),
                b'","head":',
                str(blog.head_seq).encode(),
                b',"items":[',
                b",".join(payload for _seq, payload in events),
                b'],"next_since":',
                str(next_since).encode(),
                b"}",
            ]
        )
        return Representation(body, "application/json")

    return await caching.respond(request, slug, build)
