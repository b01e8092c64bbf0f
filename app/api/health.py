from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app.api.deps import DatabaseDep, ServicesDep
from app.api.errors import error_response
from app.errors import DatabaseUnavailable
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
async def read_readiness(database: DatabaseDep) -> JSONResponse:
    """The process can reach its database."""
    try:
        await database.ping()
    except Exception:
        return error_response(DatabaseUnavailable("The database does not answer."))
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def read_metrics(services: ServicesDep) -> Response:
    """Prometheus metrics of this process: readers, channels, deliveries, slow readers."""
    metrics = services.metrics
    return Response(metrics.render(), media_type=metrics.content_type)
