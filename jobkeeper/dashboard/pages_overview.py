"""Overview: every queue with its counts, charts, oldest wait and pause state; the live workers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Path, Request, Response

from jobkeeper.api import problems
from jobkeeper.api.schemas import QUEUE_PATTERN
from jobkeeper.dashboard.charts import spark
from jobkeeper.dashboard.web import (
    PREFIX,
    DashboardRoute,
    Signed,
    Viewer,
    checked_form,
    redirect,
    render,
    url,
)

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

CHART_WINDOW_SECONDS = 3600
WORKER_MAX_AGE_SECONDS = 60.0


async def overview_context(viewer: Viewer) -> dict[str, Any]:
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        queues, metrics, workers = await tx.batch(
            ("dashboard_queues", {"tenant_id": viewer.scope}),
            ("dashboard_queue_metrics", {"tenant_id": viewer.scope, "window": CHART_WINDOW_SECONDS}),
            ("dashboard_workers", {"max_age": WORKER_MAX_AGE_SECONDS}),
        )
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in metrics:
        series[row["queue"]].append(row)
    for queue in queues:
        points = series.get(queue["name"], [])
        queue["throughput"] = spark([float(p["throughput_per_minute"]) for p in points])
        queue["failure_rate"] = spark(
            [
                p["failed"] / (p["completed"] + p["failed"]) if p["completed"] + p["failed"] else 0.0
                for p in points
            ],
            ceiling=1.0,
        )
    totals = {
        key: sum(int(q[key]) for q in queues)
        for key in ("waiting", "scheduled", "processing", "completed", "failed", "cancelled", "dead_letters")
    }
    return {"queues": queues, "workers": workers, "totals": totals}


@router.get("/", name="dashboard_overview")
async def overview(request: Request, viewer: Signed) -> Response:
    return render(request, "overview.html", await overview_context(viewer), viewer=viewer)


@router.get("/fragments/overview")
async def overview_fragment(request: Request, viewer: Signed) -> Response:
    return render(request, "_overview.html", await overview_context(viewer), viewer=viewer)


@router.post("/queues/{queue}/{action}")
async def pause_or_resume(
    request: Request,
    viewer: Signed,
    queue: str = Path(pattern=QUEUE_PATTERN),
    action: str = Path(pattern="^(pause|resume)$"),
) -> Response:
    await checked_form(request, viewer)
    viewer.require_platform_admin()
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        row = await tx.row("api_set_queue_paused", {"queue": queue, "paused": action == "pause"})
    if row is None:
        raise problems.not_found("queue", queue)
    viewer.state.stats_cache.flush()
    return redirect(url("/"), notice=f"queue {queue} {'paused' if action == 'pause' else 'resumed'}")
