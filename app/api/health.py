import asyncio
import math
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from app.api.deps import DatabaseDep, OptionalPrincipalDep, ServicesDep
from app.api.errors import error_response
from app.db import Database
from app.errors import DatabaseUnavailable
from app.schemas import OPTIONAL_TOKEN, ErrorPublic, error_responses

router = APIRouter(tags=["health"])

# How long one database ping answers /readyz for.
READINESS_MEMORY_SECONDS = 1.0


class Readiness:
    """The last database ping, remembered for a moment.

    /readyz is not rate-limited (probes poll it from one address), so the database is
    not asked per request: however many arrive, from however many addresses, a process
    pings at most once per `memory_seconds`, and requests that arrive during a ping wait
    for its answer instead of starting their own.
    """

    def __init__(self, memory_seconds: float = READINESS_MEMORY_SECONDS) -> None:
        self.memory_seconds = memory_seconds
        self.ready = False
        self.checked_at = -math.inf
        self._pinging = asyncio.Lock()

    async def check(self, database: Database) -> bool:
        """Whether the database answered its last ping, pinging again if that is too old."""
        if self._fresh():
            return self.ready
        async with self._pinging:
            if not self._fresh():  # else another request pinged while this one waited
                try:
                    await database.ping()
                    self.ready = True
                except Exception:
                    self.ready = False
                self.checked_at = time.monotonic()
        return self.ready

    def _fresh(self) -> bool:
        return time.monotonic() - self.checked_at < self.memory_seconds


def get_readiness(connection: HTTPConnection) -> Readiness:
    readiness: Readiness = connection.app.state.readiness
    return readiness


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"model": ErrorPublic, "description": "The database does not answer."}},
)
async def read_readiness(
    database: DatabaseDep, readiness: Annotated[Readiness, Depends(get_readiness)]
) -> JSONResponse:
    """The process can reach its database (checked at most once a second)."""
    if not await readiness.check(database):
        return error_response(DatabaseUnavailable("The database does not answer."))
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401)},
    openapi_extra=OPTIONAL_TOKEN,
)
async def read_metrics(services: ServicesDep, principal: OptionalPrincipalDep) -> Response:
    """Prometheus metrics of this process (readers per blog named for an admin's token)."""
    metrics = services.metrics
    admin = principal is not None and principal.is_admin
    return Response(await metrics.scrape(name_blogs=admin), media_type=metrics.content_type)
