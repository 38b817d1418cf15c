"""Overview: every queue with its counts, charts, oldest wait and pause state; the live workers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import Path, Request, Response

from jobkeeper.api.schemas import QUEUE_PATTERN
from jobkeeper.dashboard.charts import spark
from jobkeeper.dashboard.web import Signed, Viewer, checked_form, page_router, redirect, render, url
from jobkeeper.store import metrics
from jobkeeper.store import queues as queue_ops
from jobkeeper.store import workers as worker_ops

router = page_router()

CHART_WINDOW_SECONDS = 3600
WORKER_MAX_AGE_SECONDS = 60.0
COUNT_CAP = 10_000
"""Unfinished jobs (waiting, scheduled, running) are counted up to this many per queue ("10,000+")."""
FINISHED_CAP = 100_000
"""Finished jobs and dead letters, which only grow, up to this many ("100,000+"): exact counts of a
million-row history would scan it on every refresh (docs/dashboard.md, "At a million rows"). At 1,000
the page said "1,000+" where the CLI said 52,027; counting to 100,000 reads at most that many index
entries per cell."""
CAPS = {
    "waiting": COUNT_CAP,
    "scheduled": COUNT_CAP,
    "processing": COUNT_CAP,
    "awaiting_dependencies": COUNT_CAP,
    "completed": FINISHED_CAP,
    "failed": FINISHED_CAP,
    "cancelled": FINISHED_CAP,
    "dead_letters": FINISHED_CAP,
}


def shown(count: int, cap: int) -> str:
    """A count as the page shows it: exact (with thousands separators) up to `cap`, else "100,000+"."""
    return f"{cap:,}+" if count > cap else f"{count:,}"


async def overview_context(viewer: Viewer) -> dict[str, Any]:
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        queues = await tx.run(queue_ops.counts(viewer.scope, cap=COUNT_CAP, finished_cap=FINISHED_CAP))
        snapshots = await tx.run(metrics.recent(viewer.scope, CHART_WINDOW_SECONDS))
        workers = await tx.run(worker_ops.list_live(WORKER_MAX_AGE_SECONDS, viewer.scope))
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in snapshots:
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
    totals: dict[str, str] = {}
    for key, cap in CAPS.items():
        capped = any(int(q[key]) > cap for q in queues)
        total = sum(min(int(q[key]), cap) for q in queues)
        totals[key] = f"{total:,}+" if capped else f"{total:,}"
    for queue in queues:
        for key, cap in CAPS.items():
            queue[key] = shown(int(queue[key]), cap)
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
    pausing = queue_ops.set_paused(queue, action == "pause")
    await viewer.state.tenancy.found(viewer.principal, pausing, "queue", queue)
    viewer.state.stats_cache.flush()
    return redirect(url("/"), notice=f"queue {queue} {'paused' if action == 'pause' else 'resumed'}")
