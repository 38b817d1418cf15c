"""The dependency sweep: the leader's safety net for waiting jobs whose parents have all finished.

Workers settle a finished parent's children right after its outcome commits (`settle_dependents`). A
parent finished by any other path (a crash between the two statements, a manual UPDATE, a deleted
parent) would leave its children waiting; this sweep releases or cancels them. It reads waiting jobs only
(the status-leading index), so its cost grows with the jobs waiting, not with the history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from jobkeeper.store import dependencies
from jobkeeper.store.pool import AsyncPool
from jobkeeper.store.run import AsyncDb, run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    released: int = 0
    cancelled: int = 0


async def sweep_waiting_jobs(pool: AsyncPool, *, limit: int = 1000, max_batches: int = 100) -> SweepResult:
    """Settle waiting jobs whose parents have all finished, `limit` per transaction. A job it cancels
    takes its own waiting dependents with it (`settle_dependents`, same transaction)."""
    released = cancelled = 0
    async with AsyncDb(pool).connection() as conn:
        for _ in range(max_batches):
            rows = await run(conn, dependencies.sweep(limit))
            released += sum(1 for row in rows if row[1] == "pending")
            cancelled += sum(1 for row in rows if row[1] == "cancelled")
            if len(rows) < limit:
                break
    result = SweepResult(released, cancelled)
    if released or cancelled:
        log.warning(
            "dependency sweep: %d waiting jobs released and %d cancelled whose parents had finished "
            "without settling them",
            released,
            cancelled,
        )
    return result


class DependencySweep:
    """Maintenance task: run the sweep every `interval` seconds on the leader."""

    name = "dependency-sweep"

    def __init__(self, *, interval: float = 30.0) -> None:
        self.interval = interval

    async def run(self, pool: AsyncPool) -> None:
        await sweep_waiting_jobs(pool)
