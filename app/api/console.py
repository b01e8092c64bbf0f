"""The operator console (admins only): its page, the figures it polls, and the kill switch.

The page polls `GET /api/v1/console` every few seconds with the ETag of its last answer,
rather than holding a stream: the figures are sums over processes that change at most once
per readers report (app/realtime/audience.py), any process can answer a poll, and an
unchanged answer is a 304 without a body. A stream would need a loop per admin doing the
same reads, and would have to survive the very restarts the console is there to watch.
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from app.api.deps import AdminDep, OptionalPrincipalDep, RendererDep, ServicesDep, session_of
from app.caching.validators import PRIVATE_CACHE_CONTROL
from app.console import ConsolePublic, console_figures
from app.people.sessions import csrf_token
from app.schemas import RATE_LIMITED, error_responses
from app.stopping import StreamsStopPublic, set_streams_stopped

router = APIRouter(tags=["console"], responses=RATE_LIMITED)

# How often the page asks for the figures again.
POLL_SECONDS = 5
SIGN_IN_PAGE = "/newsroom"


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def read_console_page(
    request: Request, principal: OptionalPrincipalDep, services: ServicesDep, renderer: RendererDep
) -> Response:
    """The console page: the figures as they are now, then kept current by console.js."""
    headers = {"Cache-Control": "no-store"}
    if principal is None:
        return RedirectResponse(SIGN_IN_PAGE, status_code=303, headers=headers)
    if not principal.is_admin:
        body = renderer.environment.get_template("error.html").render(
            title="Admins only",
            message="The operator console is for the installation's admins.",
            link=SIGN_IN_PAGE,
            link_text="Back to the newsroom",
        )
        return HTMLResponse(body, status_code=403, headers=headers)
    cookie = await session_of(request, services, check=False)
    figures = await console_figures(services)
    body = renderer.environment.get_template("console.html").render(
        blogs=figures.blogs,
        etag=figures.etag(),
        csrf=csrf_token(cookie[1]) if cookie is not None else "",
        poll_seconds=POLL_SECONDS,
    )
    return HTMLResponse(body, headers=headers)


@router.get(
    "/api/v1/console",
    response_model=ConsolePublic,
    responses={304: {"description": "Not modified."}, **error_responses(401, 403)},
)
async def read_console(request: Request, _admin: AdminDep, services: ServicesDep) -> Response:
    """The live blogs with readers now, publish rate, lag, webhook backlog and kill switch."""
    figures = await console_figures(services)
    etag = figures.etag()
    headers = {"ETag": etag, "Cache-Control": PRIVATE_CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(figures.model_dump(mode="json"), headers=headers)


STOP_RESPONSES = error_responses(401, 403, 404, 422)


@router.post(
    "/api/v1/blogs/{slug}/streams-stop",
    responses=STOP_RESPONSES,
)
async def stop_streams(slug: str, admin: AdminDep, services: ServicesDep) -> StreamsStopPublic:
    """Kill switch on: end the blog's streams everywhere, refuse new ones, serve from cache."""
    return await set_streams_stopped(services, slug, True, admin)


@router.delete(
    "/api/v1/blogs/{slug}/streams-stop",
    responses=STOP_RESPONSES,
)
async def resume_streams(slug: str, admin: AdminDep, services: ServicesDep) -> StreamsStopPublic:
    """Kill switch off: readers may stream the blog again and resume from their seq."""
    return await set_streams_stopped(services, slug, False, admin)
