"""Who is editing: take, renew and release an entry's editing flag; list a blog's live flags.

Members only (a contributor only on entries it may edit); the newsroom stream carries the
changes as `entry.editing` notes (app/presence.py).
"""

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from app.api.deps import IdPath, PrincipalDep, ServicesDep
from app.presence import EditingList, EditingPublic, EditingRequest
from app.schemas import RATE_LIMITED, error_responses

router = APIRouter(prefix="/api/v1/blogs/{slug}", tags=["editing"], responses=RATE_LIMITED)
NO_STORE = {"Cache-Control": "no-store"}


@router.put(
    "/entries/{entry_id}/editing", responses=error_responses(400, 401, 403, 404, 409, 415, 422)
)
async def take_editing(
    slug: str,
    entry_id: IdPath,
    response: Response,
    principal: PrincipalDep,
    services: ServicesDep,
    data: Annotated[EditingRequest | None, Body()] = None,
) -> EditingPublic:
    """Show that you are editing an entry for the next 30 s; call again to renew."""
    take_over = data.take_over if data is not None else False
    answer = await services.presence.take(slug, entry_id, principal, take_over=take_over)
    response.headers.update(NO_STORE)
    return answer


@router.delete(
    "/entries/{entry_id}/editing",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
async def release_editing(
    slug: str, entry_id: IdPath, principal: PrincipalDep, services: ServicesDep
) -> None:
    """Stop showing that you are editing an entry (no error when you were not)."""
    await services.presence.release(slug, entry_id, principal)


@router.get("/editing", responses=error_responses(401, 403, 404, 422))
async def read_editing(
    slug: str, response: Response, principal: PrincipalDep, services: ServicesDep
) -> EditingList:
    """Who is editing which entry of the blog now, for its members."""
    answer = await services.presence.live(slug, principal)
    response.headers.update(NO_STORE)
    return answer
