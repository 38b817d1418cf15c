"""Retention: prune finished history in bounded batches, and snapshot queue metrics (leader tasks).

The same pruning is what the `cleanup-old-data` job type runs when enqueued by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jobkeeper.store import alerts as store_alerts
from jobkeeper.store import jobs as store_jobs
from jobkeeper.store import metrics
from jobkeeper.store.pool import AsyncPool
from jobkeeper.store.run import AsyncDb, Steps

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Horizons:
    """How long each kind of history is kept, in seconds."""

    finished_jobs: float = 7 * DAY
    queue_metrics: float = 30 * DAY
    acknowledged_alerts: float = 30 * DAY


@dataclass(frozen=True, slots=True)
class PruneResult:
    jobs: int
    idempotency_keys: int
    queue_metrics: int
    alerts: int
    statements: int


async def _prune(
    pool: AsyncPool, delete: Callable[[int], Steps[int]], batch: int, max_batches: int
) -> tuple[int, int]:
    """Run `delete(batch)` until it deletes fewer than `batch` rows, at most `max_batches` times, on one
    connection; returns the rows deleted and the statements run."""
    deleted = statements = 0
    db = AsyncDb(pool)
    async with db.connection() as conn:
        for _ in range(max_batches):
            count = await db.run(delete(batch), conn)
            statements += 1
            deleted += count
            if count < batch:
                break
    return deleted, statements


async def prune(
    pool: AsyncPool,
    horizons: Horizons = Horizons(),
    *,
    batch: int = 1000,
    max_batches: int = 100,
    now: datetime | None = None,
) -> PruneResult:
    """Delete expired history, `batch` rows per statement, at most `max_batches` statements per kind
    (what is left is taken by the next run)."""
    deletes: list[Callable[[int], Steps[int]]] = [
        lambda limit: store_jobs.prune_finished(older_than=horizons.finished_jobs, now=now, limit=limit),
        lambda limit: store_jobs.prune_idempotency_keys(now=now, limit=limit),
        lambda limit: metrics.prune(older_than=horizons.queue_metrics, now=now, limit=limit),
        lambda limit: store_alerts.prune(older_than=horizons.acknowledged_alerts, now=now, limit=limit),
    ]
    done = [await _prune(pool, delete, batch, max_batches) for delete in deletes]  # in turn, not at once
    (jobs, _), (keys, _), (snapshots, _), (alerts, _) = done
    result = PruneResult(jobs, keys, snapshots, alerts, sum(statements for _, statements in done))
    if jobs or keys or snapshots or alerts:
        log.info(
            "pruned %d jobs, %d idempotency keys, %d metric rows, %d alerts", jobs, keys, snapshots, alerts
        )
    return result


async def snapshot(pool: AsyncPool, *, window: float = 60.0, now: datetime | None = None) -> int:
    """Write one `queue_metrics` row per queue (and per queue and tenant with activity); returns rows."""
    return await AsyncDb(pool).run(metrics.write_snapshot(window=window, now=now))


class Pruner:
    name = "pruner"

    def __init__(self, horizons: Horizons = Horizons(), *, interval: float = 300.0) -> None:
        self.horizons = horizons
        self.interval = interval

    async def run(self, pool: AsyncPool) -> None:
        await prune(pool, self.horizons)


class MetricsSnapshot:
    name = "metrics-snapshot"

    def __init__(self, *, interval: float = 60.0) -> None:
        self.interval = interval

    async def run(self, pool: AsyncPool) -> None:
        await snapshot(pool, window=self.interval)
