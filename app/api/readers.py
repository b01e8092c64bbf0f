"""Readers now and delivery receipts of a blog, for its members (app/realtime/audience.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from app.api.deps import BlogDep, ServicesDep, role_on_blog
from app.people.roles import Principal
from app.schemas import RATE_LIMITED, UtcDatetime, error_responses

router = APIRouter(prefix="/api/v1/blogs", tags=["blogs"], responses=RATE_LIMITED)

MemberDep = Annotated[Principal, Depends(role_on_blog("contributor", "Seeing a blog's readers"))]


class EventReceipt(BaseModel):
    """How many of the streams open when the event was sent have been written it."""

    seq: int
    type: str = Field(description="The event's type, e.g. `entry.updated`.")
    entry_id: int | None = Field(description="The entry the event is about.")
    open: int = Field(description="Public streams open, over every process, when it was sent.")
    delivered: int = Field(description="Of those, how many have been written the event.")


class ReadersPublic(BaseModel):
    now: int = Field(description="Public streams (WebSocket and SSE) open now, every process.")
    peak_today: int = Field(description="The most open at once today, in the blog's time zone.")
    peak_at: UtcDatetime | None = Field(description="When that peak was reached.")
    processes: int = Field(description="Server processes whose counts are in the sum.")
    as_of: UtcDatetime = Field(description="The oldest report in the sum (they come every few s).")
    recent_events: list[EventReceipt] = Field(description="The blog's last events, oldest first.")


@router.get(
    "/{slug}/readers",
    responses={
        200: {"headers": {"Cache-Control": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 404, 422),
    },
)
async def read_readers(
    blog: BlogDep, _member: MemberDep, services: ServicesDep, response: Response
) -> ReadersPublic:
    """How many read the blog now, the day's peak, and delivery receipts of its last events
    (members of the blog, any role). Counts come from every process every few seconds."""
    readers = services.audience.readers(blog.slug, blog.id, blog.timezone)
    response.headers["Cache-Control"] = "private, no-store"
    return ReadersPublic(
        now=readers.now,
        peak_today=readers.peak_today,
        peak_at=readers.peak_at,
        processes=readers.processes,
        as_of=readers.as_of,
        recent_events=[
            EventReceipt(
                seq=r.seq, type=r.type, entry_id=r.entry_id, open=r.open, delivered=r.delivered
            )
            for r in readers.recent_events
        ],
    )
