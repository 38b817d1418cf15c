"""Service information, liveness and readiness. Public: they reveal no tenant data and no internals."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

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


def _wants_html(request: Request) -> bool:
    """A browser: its Accept header names text/html (not with q=0). curl's `*/*` and JSON clients do not."""
    for media_range in request.headers.get("accept", "").split(","):
        kind, *params = (part.strip().lower() for part in media_range.split(";"))
        if kind in ("text/html", "application/xhtml+xml") and _quality(params) > 0:
            return True
    return False


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


@router.get(
    "/",
    response_model=ServiceInfo,
    summary="Service information; a browser is sent to the dashboard",
    responses={307: {"description": "`Accept: text/html` (a browser): `Location: /dashboard/`"}},
)
async def root(request: Request) -> Response | ServiceInfo:
    """A browser (its Accept names text/html) is redirected to `/dashboard/`; any other client gets the
    service information of `GET /api/v1/queue/` (where the API, its documentation and metrics are)."""
    if _wants_html(request):
        return RedirectResponse("/dashboard/", status_code=307)
    return await service_info()


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
