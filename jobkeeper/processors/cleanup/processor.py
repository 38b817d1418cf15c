"""`cleanup-old-data`: the retention the maintenance leader runs (`jobkeeper.maintenance.retention.prune`),
on demand.

Payload (`payload.py`; every field optional; seconds):
    {"finished_jobs": 604800, "queue_metrics": 2592000, "acknowledged_alerts": 2592000,
     "batch": 1000, "max_batches": 100}

Horizons come from the payload, else from `JOBKEEPER_RETENTION_FINISHED_JOBS`, `…_QUEUE_METRICS` and
`…_ALERTS`, else the defaults of `Horizons` (7, 30 and 30 days). Pruning acts on every tenant's history,
so a payload cannot make a horizon shorter than one hour (`payload.MIN_HORIZON`). The result is the
number of rows deleted of each kind. What the same rules keep (dead-lettered jobs, jobs a live
idempotency key points at) is kept here too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jobkeeper.config import Settings
from jobkeeper.maintenance.retention import Horizons, prune
from jobkeeper.processors.cleanup.payload import JOB_TYPE, CleanupOldData
from jobkeeper.processors.support import parse, processor, require_database
from jobkeeper.store.pool import async_pool
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

DEFAULT_BATCH = 1000
DEFAULT_MAX_BATCHES = 100


def problems(settings: Settings) -> dict[str, list[str]]:
    if settings.database_url is None:
        return {JOB_TYPE: ["DATABASE_URL is not set (cleanup-old-data prunes the jobkeeper database)"]}
    return {JOB_TYPE: []}


def configured_horizons(settings: Settings) -> Horizons:
    defaults = Horizons()
    return Horizons(
        finished_jobs=settings.retention_finished_jobs or defaults.finished_jobs,
        queue_metrics=settings.retention_queue_metrics or defaults.queue_metrics,
        acknowledged_alerts=settings.retention_alerts or defaults.acknowledged_alerts,
    )


def horizons(data: CleanupOldData, settings: Settings) -> Horizons:
    configured = configured_horizons(settings)
    return Horizons(
        finished_jobs=data.finished_jobs or configured.finished_jobs,
        queue_metrics=data.queue_metrics or configured.queue_metrics,
        acknowledged_alerts=data.acknowledged_alerts or configured.acknowledged_alerts,
    )


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Register `cleanup-old-data` in `registry` unless the type has a handler already (yours wins)."""

    @processor(registry, JOB_TYPE, "background", settings)
    async def cleanup_old_data(payload: Any, ctx: JobContext, current: Settings) -> dict[str, Any]:
        database_url = require_database(JOB_TYPE, current, problems)
        data = parse(CleanupOldData, payload)
        keep = horizons(data, current)
        batch = data.batch or DEFAULT_BATCH
        max_batches = data.max_batches or DEFAULT_MAX_BATCHES
        # One connection is all pruning uses: it runs its statements one after another.
        single = dataclasses.replace(current, pool_min=1, pool_max=1)
        async with async_pool(single, database_url, name="jobkeeper-cleanup") as pool:
            pruned = await prune(pool, keep, batch=batch, max_batches=max_batches)
        ctx.logger.info("cleanup pruned %s", pruned)
        return {
            "jobs": pruned.jobs,
            "idempotency_keys": pruned.idempotency_keys,
            "queue_metrics": pruned.queue_metrics,
            "alerts": pruned.alerts,
            "statements": pruned.statements,
            "horizons": dataclasses.asdict(keep),
        }
