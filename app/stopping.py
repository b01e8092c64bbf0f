"""The operator's kill switch for a runaway blog: stop its streams, and start them again.

Stopping a blog's streams closes every open stream of it, on every process, with the
restart code (1012): readers keep their last seq and come back by themselves. While
stopped, new streams are refused (a WebSocket is closed with 1012, SSE answers 503 with
Retry-After) and the blog's pages and feeds are served from each process's memory of its
answers, even when stale (app/caching/middleware.py), so that a runaway blog costs the
database nothing per request. Turning it off lets readers in again; they resume from
their seq with nothing lost.

The flag lives on the blog's row; this process acts on it at once and every other process
at its hub's next check of the heads (one query per check, not per reader): the broker
is a doorbell that may lose messages, and a lost "stop" must not leave streams running.
Who turned it, and when, is in the audit log.
"""

from pydantic import BaseModel

from app import audit
from app.people.roles import Principal
from app.queries import find_blog
from app.services import Services


class StreamsStopPublic(BaseModel):
    blog: str
    streams_stopped: bool


async def set_streams_stopped(
    services: Services, slug: str, stopped: bool, actor: Principal
) -> StreamsStopPublic:
    """Turn the blog's kill switch on or off (an admin's act, checked by the route);
    turning it to where it already is changes and records nothing."""
    async with services.database.write_session() as session:
        blog = await find_blog(session, slug)
        if blog.streams_stopped != stopped:
            blog.streams_stopped = stopped
            action = "blog.streams_stopped" if stopped else "blog.streams_resumed"
            audit.record(session, actor, action, blog_id=blog.id)
    services.hub.set_streams_stopped(slug, stopped)
    return StreamsStopPublic(blog=slug, streams_stopped=stopped)
