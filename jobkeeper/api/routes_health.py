"""Service information, liveness and readiness. Public: they reveal no tenant data and no internals."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from jobkeeper import __version__
from jobkeeper.api.schemas import Health, Liveness, ServiceInfo
from jobkeeper.api.state import State

PREFIX = "/api/v1/queue"

router = APIRouter(tags=["health"])

_HEALTH_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {"model": Health, "description": "A check failed; `checks` names it"}
}


@router.get("/health", response_model=Liveness, summary="Liveness: the process answers")
async def liveness() -> Liveness:
    """Always 200 while the process serves requests. It does not touch the database, so an orchestrator
    does not restart healthy API processes while PostgreSQL is briefly away; readiness covers that."""
    return Liveness(status="ok")


@router.get(PREFIX + "/", response_model=ServiceInfo, summary="Service information")
async def service_info() -> ServiceInfo:
    return ServiceInfo(
        service="jobkeeper",
        version=__version__,
        api="v1",
        docs="/docs",
        openapi="/openapi.json",
        metrics="/metrics",
    )


async def _health(state: State) -> JSONResponse:
    health = await state.readiness.check()
    return JSONResponse(health.model_dump(), status_code=200 if health.status == "ok" else 503)


@router.get(
    PREFIX + "/health",
    response_model=Health,
    responses=_HEALTH_RESPONSES,
    summary="Health: every check, 200 or 503",
)
async def health(state: State) -> JSONResponse:
    """The database answers, the schema is at head, a worker heartbeat is recent."""
    return await _health(state)


@router.get(
    PREFIX + "/health/ready",
    response_model=Health,
    responses=_HEALTH_RESPONSES,
    summary="Readiness probe: 200 or 503 naming the failing checks",
)
async def readiness(state: State) -> JSONResponse:
    return await _health(state)
