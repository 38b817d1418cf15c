"""The rescuer: returns jobs whose worker stopped heartbeating (DESIGN §5, issue: heartbeats and rescue)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from jobkeeper.dependencies import needs_settle
from jobkeeper.store.queries import query

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
    pool: AsyncConnectionPool[Any],
    *,
    lease_seconds: float,
    now: datetime | None = None,
    limit: int = 1000,
) -> RescueResult:
    """Return (or fail, or cancel) every job whose heartbeat is older than `lease_seconds`, in batches."""
    counts = {"pending": 0, "failed": 0, "cancelled": 0}
    params = {"lease_seconds": lease_seconds, "now": now, "limit": limit}
    async with pool.connection() as conn:
        while True:
            cur = await conn.execute(query("rescue_stale_jobs"), params)
            rows = await cur.fetchall()
            for _, status, _ in rows:
                counts[status] += 1
            parents = needs_settle([{"id": r[0], "status": r[1], "has_dependents": r[2]} for r in rows])
            if parents:
                await conn.execute(query("settle_dependents"), {"ids": parents})
            if len(rows) < limit:
                break
        cur = await conn.execute(query("mark_lost_workers"), {"lease_seconds": lease_seconds, "now": now})
        lost = len(await cur.fetchall())
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

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        await rescue_stale_jobs(pool, lease_seconds=self.lease_seconds)
