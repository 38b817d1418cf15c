"""Prometheus metrics at `/metrics` and `/api/v1/queue/metrics/prometheus` (the seed's path).

Public, as the seed had it, so a scraper needs no token: the text carries queue, type, state, route and
severity names and counts only, never a tenant id or payload data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response

from jobkeeper.api.metrics import CONTENT_TYPE, DURATION_BOUNDS, Snapshot
from jobkeeper.api.state import ApiState, State

log = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])


async def refresh(state: ApiState) -> None:
    """Read the database-backed metrics in one round trip; on failure export `jobkeeper_database_up 0`."""
    window = state.settings.metrics_window
    snapshot = Snapshot(window=window)
    try:
        async with state.tenancy.transaction(None) as tx:
            queues, depth, finished, dead, limiters, alerts, workers = await tx.batch(
                ("load_queues", {}),
                ("api_metrics_depth", {"window": window}),
                ("api_metrics_finished", {"window": window, "bounds": list(DURATION_BOUNDS)}),
                ("api_metrics_dead_letters", {"window": window}),
                ("api_metrics_limiters", {}),
                ("api_metrics_alerts", {"window": window}),
                ("api_live_workers", {"max_age": state.settings.ready_worker_max_age}),
            )
    except Exception as exc:
        log.warning("metrics: the database could not be read: %s", exc)
        state.metrics.database.snapshot = Snapshot(up=False)
        return
    snapshot.up = True
    snapshot.queues = {row["name"]: row["paused"] for row in queues}
    snapshot.depth, snapshot.finished, snapshot.dead_letters = depth, finished, dead
    snapshot.limiters, snapshot.alerts = limiters, alerts
    snapshot.live_workers = int(workers[0]["live"]) if workers else 0
    state.metrics.database.snapshot = snapshot


async def _render(state: ApiState) -> Response:
    await refresh(state)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}
}


@router.get("/metrics", response_class=Response, responses=_DOC, summary="Prometheus metrics")
async def metrics(state: State) -> Response:
    return await _render(state)


@router.get(
    "/api/v1/queue/metrics/prometheus",
    response_class=Response,
    responses=_DOC,
    summary="Prometheus metrics (the seed's path)",
)
async def metrics_prometheus(state: State) -> Response:
    return await _render(state)
