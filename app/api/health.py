from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.errors import error_response
from app.schemas import ErrorPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"model": ErrorPublic, "description": "The database does not answer."}},
)
async def read_readiness(request: Request) -> JSONResponse:
    """The process can reach its database."""
    try:
        await request.app.state.database.ping()
    except Exception:
        return error_response(503, "database_unavailable", "The database does not answer.")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def read_metrics(request: Request) -> Response:
    """Prometheus metrics of this process: readers, channels, deliveries, slow readers."""
    metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=metrics.content_type)
