"""Outbound rate limiters (view, adjust) and the queue-metrics history for charts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from jobkeeper.api import problems
from jobkeeper.api.access import tenant_filter
from jobkeeper.api.auth import Caller, PlatformAdmin
from jobkeeper.api.schemas import QUEUE_PATTERN, REQUEST
from jobkeeper.api.state import State
from jobkeeper.store import limiters, metrics
from jobkeeper.types import Limiter

PREFIX = "/api/v1/queue"
router = APIRouter(prefix=PREFIX, tags=["limiters"])
_ERRORS = problems.responses(400, 401, 403, 404, 422, 503)
LIMITER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
MIN_RATE = 0.001
"""The slowest rate a limiter may have (one call in about 17 minutes): a rate such as 5e-324 is positive
but stops the limiter for good, and no provider needs one slower than this."""


class LimiterOut(BaseModel):
    name: str
    rate_per_second: float
    burst: int
    max_concurrency: int | None
    group: str | None = Field(description="the limiter whose budget this one also draws on")
    tokens: float = Field(description="tokens available now (refilled to the database clock)")
    in_flight: int = Field(description="jobs now processing whose type names this limiter")
    waits: int = Field(description="jobs put back so far for want of a token or a free slot")


class LimiterList(BaseModel):
    items: list[LimiterOut]


class LimiterUpdate(BaseModel):
    model_config = REQUEST
    rate_per_second: float | None = Field(default=None, ge=MIN_RATE, le=1_000_000, description="per second")
    burst: int | None = Field(default=None, ge=1, le=1_000_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=1_000_000)
    unlimited_concurrency: bool = Field(default=False, description="remove the concurrency cap")


class MetricsPoint(BaseModel):
    captured_at: datetime
    waiting: int
    scheduled: int
    running: int
    completed: int
    failed: int
    dead: int
    throughput_per_minute: float
    oldest_waiting_seconds: float | None


class MetricsHistory(BaseModel):
    queue: str
    tenant_id: uuid.UUID | None = Field(description="null: all tenants (platform admins)")
    points: list[MetricsPoint] = Field(description="oldest first, one per snapshot (every minute)")


def _out(limiter: Limiter) -> LimiterOut:
    return LimiterOut(
        name=limiter.name,
        rate_per_second=limiter.rate_per_second,
        burst=limiter.burst,
        max_concurrency=limiter.max_concurrency,
        group=limiter.limiter_group,
        tokens=round(limiter.tokens, 3),
        in_flight=limiter.in_flight,
        waits=limiter.waits,
    )


@router.get("/limiters", response_model=LimiterList, responses=_ERRORS, summary="List outbound rate limiters")
async def list_limiters(principal: Caller, state: State) -> LimiterList:
    """Every outbound limiter the workers share, with its tokens now, calls in flight and waits so far.
    In-flight counts are the caller's tenant's jobs (platform admins: all)."""
    async with state.tenancy.transaction(principal) as tx:
        found = await tx.run(limiters.list())
    return LimiterList(items=[_out(limiter) for limiter in found])


@router.patch(
    "/limiters/{name}",
    response_model=LimiterOut,
    responses=_ERRORS,
    summary="Adjust an outbound rate limiter",
)
async def update_limiter(
    name: Annotated[str, Path(pattern=LIMITER_PATTERN)],
    change: LimiterUpdate,
    principal: PlatformAdmin,
    state: State,
) -> LimiterOut:
    """Change a limiter's rate, burst or concurrency cap; every worker uses it from its next gate."""
    updating = limiters.update(
        name,
        rate_per_second=change.rate_per_second,
        burst=change.burst,
        max_concurrency=change.max_concurrency,
        clear_max_concurrency=change.unlimited_concurrency,
    )
    return _out(await state.tenancy.found(principal, updating, "limiter", name))


@router.get(
    "/queues/{queue}/metrics",
    response_model=MetricsHistory,
    responses=_ERRORS,
    summary="Queue metrics history",
)
async def queue_metrics(
    queue: Annotated[str, Path(pattern=QUEUE_PATTERN)],
    principal: Caller,
    state: State,
    hours: Annotated[float, Query(gt=0, le=24 * 31, description="how far back")] = 24.0,
    tenant_id: Annotated[
        uuid.UUID | None, Query(description="Platform admins only; omit for all tenants")
    ] = None,
) -> MetricsHistory:
    """The per-minute snapshots of a queue (the leader writes them), for throughput and failure charts."""
    scope = tenant_filter(principal, tenant_id)
    since = datetime.now(UTC) - timedelta(hours=hours)
    async with state.tenancy.transaction(principal) as tx:
        rows = await tx.run(metrics.history(queue, scope, since=since, limit=50_000))
    points = [MetricsPoint(**{k: v for k, v in row.items() if k != "tenant_id"}) for row in reversed(rows)]
    return MetricsHistory(queue=queue, tenant_id=scope, points=points)
