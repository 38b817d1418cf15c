"""Prometheus metrics at `/metrics` and `/api/v1/queue/metrics/prometheus` (the seed's path).

With JOBKEEPER_METRICS_TOKEN set, a scrape must send it (`Authorization: Bearer <token>`, else 401) and
sees every name. Unset, the metrics are public as the seed had them, but a queue, job type or limiter that
belongs to a tenant must not reach anonymous callers: those are summed into `_private` series (limiters
left out). The text never carries a tenant id or payload data.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from jobkeeper.api import problems
from jobkeeper.api.metrics import CONTENT_TYPE, DURATION_BOUNDS, SharedNames, Snapshot, anonymous
from jobkeeper.api.state import ApiState, State
from jobkeeper.store import metrics as store

log = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])


async def refresh(state: ApiState, *, every_name: bool = True) -> None:
    """Read the database-backed metrics in one round trip; on failure export `jobkeeper_database_up 0`.
    Without `every_name`, as an anonymous caller may see them (`jobkeeper.api.metrics.anonymous`)."""
    window = state.settings.metrics_window
    snapshot = Snapshot(window=window)
    try:
        async with state.tenancy.transaction(None) as tx:
            read = await tx.run(
                store.scrape(
                    window=window, bounds=DURATION_BOUNDS, worker_max_age=state.settings.ready_worker_max_age
                )
            )
    except Exception as exc:
        log.warning("metrics: the database could not be read: %s", exc)
        state.metrics.database.snapshot = Snapshot(up=False)
        return
    snapshot.up = True
    snapshot.queues = read.queues
    snapshot.depth, snapshot.finished, snapshot.dead_letters = read.depth, read.finished, read.dead_letters
    snapshot.limiters, snapshot.alerts = read.limiters, read.alerts
    snapshot.live_workers = read.live_workers
    if not every_name:
        shared = SharedNames(read.shared_queues, read.shared_job_types, read.shared_limiters)
        snapshot = anonymous(snapshot, shared)
    state.metrics.database.snapshot = snapshot


def _sees_every_name(request: Request, state: ApiState) -> bool:
    """True for a scrape with the configured token; False (anonymous) when none is configured; else 401."""
    token = state.settings.metrics_token
    if token is None:
        return False
    header = request.headers.get("authorization")
    if not header:
        raise problems.unauthorized("the metrics need the scrape token: `Authorization: Bearer <token>`")
    scheme, _, sent = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        raise problems.invalid_token("the scrape token is wrong (JOBKEEPER_METRICS_TOKEN)")
    return True


async def _render(request: Request, state: ApiState) -> Response:
    await refresh(state, every_name=_sees_every_name(request, state))
    # rendered right after the refresh, with no await between: a concurrent scrape cannot swap the snapshot
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
    **problems.responses(401),  # only when JOBKEEPER_METRICS_TOKEN is set
}


@router.get("/metrics", response_class=Response, responses=_DOC, summary="Prometheus metrics")
async def metrics(request: Request, state: State) -> Response:
    return await _render(request, state)


@router.get(
    "/api/v1/queue/metrics/prometheus",
    response_class=Response,
    responses=_DOC,
    summary="Prometheus metrics (the seed's path)",
)
async def metrics_prometheus(request: Request, state: State) -> Response:
    return await _render(request, state)
