"""Retention: prune finished history in bounded batches, and snapshot queue metrics (leader tasks).

The same pruning is what the `cleanup-old-data` job type runs when enqueued by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from jobkeeper.store import metrics
from jobkeeper.store.run import AsyncDb, Steps, named

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


def _by_name(name: str, params: dict[str, Any]) -> Callable[[int], Steps[int]]:
    """A prune still run by its query's name, until its subject's store module has the operation (issue
    16: prune_finished_jobs and prune_idempotency_keys go to store/jobs.py, prune_alerts to alerts.py)."""

    def delete(limit: int) -> Steps[int]:
        deleted: int = yield named(name, params | {"limit": limit}, rows="count")
        return deleted

    return delete


async def _prune(
    pool: AsyncConnectionPool[Any], delete: Callable[[int], Steps[int]], batch: int, max_batches: int
) -> tuple[int, int]:
    """Run `delete(batch)` until it deletes fewer than `batch` rows, at most `max_batches` times, on one
    connection; returns the rows deleted and the statements run."""
    deleted = statements = 0
    db = AsyncDb(pool)
    async with pool.connection() as conn:
        for _ in range(max_batches):
            count = await db.run(delete(batch), conn)
            statements += 1
            deleted += count
            if count < batch:
                break
    return deleted, statements


async def prune(
    pool: AsyncConnectionPool[Any],
    horizons: Horizons = Horizons(),
    *,
    batch: int = 1000,
    max_batches: int = 100,
    now: datetime | None = None,
) -> PruneResult:
    """Delete expired history, `batch` rows per statement, at most `max_batches` statements per kind
    (what is left is taken by the next run)."""
    jobs, s1 = await _prune(
        pool,
        _by_name("prune_finished_jobs", {"now": now, "older_than": horizons.finished_jobs}),
        batch,
        max_batches,
    )
    keys, s2 = await _prune(pool, _by_name("prune_idempotency_keys", {"now": now}), batch, max_batches)
    snapshots, s3 = await _prune(
        pool,
        lambda limit: metrics.prune(older_than=horizons.queue_metrics, now=now, limit=limit),
        batch,
        max_batches,
    )
    alerts, s4 = await _prune(
        pool,
        _by_name("prune_alerts", {"now": now, "older_than": horizons.acknowledged_alerts}),
        batch,
        max_batches,
    )
    result = PruneResult(jobs, keys, snapshots, alerts, s1 + s2 + s3 + s4)
    if jobs or keys or snapshots or alerts:
        log.info(
            "pruned %d jobs, %d idempotency keys, %d metric rows, %d alerts", jobs, keys, snapshots, alerts
        )
    return result


async def snapshot(
    pool: AsyncConnectionPool[Any], *, window: float = 60.0, now: datetime | None = None
) -> int:
    """Write one `queue_metrics` row per queue (and per queue and tenant with activity); returns rows."""
    return await AsyncDb(pool).run(metrics.write_snapshot(window=window, now=now))


class Pruner:
    name = "pruner"

    def __init__(self, horizons: Horizons = Horizons(), *, interval: float = 300.0) -> None:
        self.horizons = horizons
        self.interval = interval

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        await prune(pool, self.horizons)


class MetricsSnapshot:
    name = "metrics-snapshot"

    def __init__(self, *, interval: float = 60.0) -> None:
        self.interval = interval

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        await snapshot(pool, window=self.interval)
