"""Operations of an attempt's life (sql/outcomes.sql): the claim, the batched outcomes and progress, and
the rescue of jobs whose worker was lost. This is the worker's hot path in one module.

The hot operations take keyword arguments and build their parameters inline (no parameter object), and
convert rows once: one `Job` per claimed row, raw tuples for the outcomes. Their cost beyond psycopg's is
one generator step per statement, per batch and never per job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobkeeper.store import dependencies
from jobkeeper.store.rows import job_from_row
from jobkeeper.store.run import Steps, named
from jobkeeper.types import Job, Tier

FINISHED = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class JobRef:
    """One claim of a job: its row's key (the jobs table is partitioned by tier) and the attempt. Every
    write to a claimed job names it, so that it never lands on a later claim of the same job."""

    id: uuid.UUID
    tier: Tier
    attempt: int

    @classmethod
    def of(cls, job: Job) -> JobRef:
        return cls(job.id, job.tier, job.attempts)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job as the claim returned it, with the columns `Job` does not carry."""

    job: Job
    timeout_seconds: float | None = None
    ref: JobRef = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ref", JobRef.of(self.job))


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a batch of outcomes wrote. `written` holds the row `(id, status, attempts, has_dependents)` of
    each outcome that landed (one missing: its job is no longer this worker's); `parents` are the jobs that
    finished with dependents, to `settle` once the batch has committed."""

    written: list[tuple[Any, ...]]
    parents: list[uuid.UUID]


def claim(
    *,
    worker_id: uuid.UUID,
    types: Sequence[str],
    limit: int,
    queues: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Steps[list[Claimed]]:
    """Claim up to `limit` ready jobs of `types` from the open queues (all, or `queues`), fairly between
    tenants; they are returned highest priority first. Parameters travel in binary (sql/outcomes.sql)."""
    rows = yield named(
        "claim_jobs",
        {
            "worker_id": worker_id,
            "types": list(types),
            "limit": limit,
            "queues": list(queues) if queues is not None else None,
            "now": now,
        },
        binary=True,
    )
    return [Claimed(job_from_row(row), row["timeout_seconds"]) for row in rows]


def record(
    *,
    worker_id: uuid.UUID,
    ids: list[uuid.UUID],
    tiers: list[str],
    attempts: list[int],
    kinds: list[str],
    results: list[str | None],
    errors: list[str | None],
    delays: list[float],
    now: datetime | None = None,
) -> Steps[Recorded]:
    """Write a batch of outcomes in one statement, as parallel columns (kind: complete, retry, fail,
    cancel, snooze or release; result and error as JSON text). Only jobs still processing under
    `worker_id` and the named attempt change. The dependents of the finished jobs are not settled here:
    the caller runs `dependencies.settle(recorded.parents)` once this has committed."""
    rows = yield named(
        "record_outcomes",
        {
            "ids": ids,
            "tiers": tiers,
            "attempts": attempts,
            "kinds": kinds,
            "results": results,
            "errors": errors,
            "delays": delays,
            "worker_id": worker_id,
            "now": now,
        },
        rows="tuple",
        binary=True,
    )
    # Tuples, filtered on has_dependents first: most batches have no parent, and no row becomes a dict.
    return Recorded(rows, [row[0] for row in rows if row[3] and row[1] in FINISHED])


def record_progress(
    *, worker_id: uuid.UUID, ids: list[uuid.UUID], tiers: list[str], progress: list[str]
) -> Steps[None]:
    """Store the latest progress (JSON text) of running jobs of `worker_id`, without a synchronous commit."""
    yield named("record_progress", {"ids": ids, "tiers": tiers, "progress": progress, "worker_id": worker_id})


def rescue_stale(
    *, lease_seconds: float, now: datetime | None = None, limit: int = 1000
) -> Steps[dict[str, int]]:
    """Return to pending (or fail, or cancel) every job whose heartbeat is older than `lease_seconds`,
    `limit` per statement, and settle the dependents of those that finished. Returns how many jobs went to
    each status ("pending", "failed", "cancelled")."""
    counts = {"pending": 0, "failed": 0, "cancelled": 0}
    params = {"lease_seconds": lease_seconds, "now": now, "limit": limit}
    while True:
        rows = yield named("rescue_stale_jobs", params, rows="tuple")
        for _, status, _ in rows:
            counts[status] += 1
        parents = [row[0] for row in rows if row[2] and row[1] in FINISHED]
        if parents:
            yield from dependencies.settle(parents)
        if len(rows) < limit:
            return counts
