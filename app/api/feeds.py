"""The blog's feeds: Atom and JSON Feed, cached in memory until the blog next changes.

HEAD is answered too: feed readers and validators use it to check for changes.
"""

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import caching
from app.api.deps import ServicesDep
from app.caching import Representation
from app.feeds import ATOM_MEDIA_TYPE, JSON_FEED_MEDIA_TYPE, read_feed
from app.models import Blog
from app.schemas import RATE_LIMITED, error_responses

router = APIRouter(prefix="/blogs/{slug}", tags=["feeds"], responses=RATE_LIMITED)
FEED_RESPONSES = {**caching.NOT_MODIFIED_RESPONSE, **error_responses(404, 422)}


@router.head("/feed.atom", include_in_schema=False)
@router.get(
    "/feed.atom",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}, **FEED_RESPONSES},
)
async def read_atom_feed(slug: str, request: Request, services: ServicesDep) -> Response:
    """The blog as an Atom feed: the newest 50 entries and recent deletions (tombstones)."""
    base_url, writer = services.settings.public_base_url, services.feed_writer

    async def build(session: AsyncSession, blog: Blog) -> Representation:
        feed = await read_feed(session, blog, base_url)
        return Representation(writer.atom(feed), ATOM_MEDIA_TYPE)

    return await caching.respond(request, slug, build, keep_body=True)


@router.head("/feed.json", include_in_schema=False)
@router.get(
    "/feed.json",
    response_class=Response,
    responses={200: {"content": {JSON_FEED_MEDIA_TYPE: {}}}, **FEED_RESPONSES},
)
async def read_json_feed(slug: str, request: Request, services: ServicesDep) -> Response:
    """The blog as a JSON Feed 1.1: the newest 50 entries."""
    base_url, writer = services.settings.public_base_url, services.feed_writer

    async def build(session: AsyncSession, blog: Blog) -> Representation:
        feed = await read_feed(session, blog, base_url)
        return Representation(writer.json_feed(feed), JSON_FEED_MEDIA_TYPE)

    return await caching.respond(request, slug, build, keep_body=True)
