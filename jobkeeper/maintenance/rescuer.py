"""The rescuer: returns jobs whose worker stopped heartbeating (DESIGN §5, issue: heartbeats and rescue)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from jobkeeper.store import outcomes, workers
from jobkeeper.store.pool import AsyncPool
from jobkeeper.store.run import AsyncDb, run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RescueResult:
    returned: int = 0
    failed: int = 0
    cancelled: int = 0
    lost_workers: int = 0

    @property
    def total(self) -> int:
        return self.returned + self.failed + self.cancelled


async def rescue_stale_jobs(
    pool: AsyncPool,
    *,
    lease_seconds: float,
    now: datetime | None = None,
    limit: int = 1000,
) -> RescueResult:
    """Return (or fail, or cancel) every job whose heartbeat is older than `lease_seconds`, in batches."""
    async with AsyncDb(pool).connection() as conn:
        counts = await run(conn, outcomes.rescue_stale(lease_seconds=lease_seconds, now=now, limit=limit))
        lost = await run(conn, workers.mark_lost(lease_seconds=lease_seconds, now=now))
    result = RescueResult(counts["pending"], counts["failed"], counts["cancelled"], lost)
    if result.total or lost:
        log.warning(
            "rescued %d jobs of lost workers (%d to pending, %d failed, %d cancelled); %d workers lost",
            result.total,
            result.returned,
            result.failed,
            result.cancelled,
            lost,
        )
    return result


class Rescuer:
    """Maintenance task: run the rescue every `interval` seconds on the leader."""

    name = "rescuer"

    def __init__(self, *, lease_seconds: float = 30.0, interval: float = 5.0) -> None:
        self.lease_seconds = lease_seconds
        self.interval = interval

    async def run(self, pool: AsyncPool) -> None:
        await rescue_stale_jobs(pool, lease_seconds=self.lease_seconds)
