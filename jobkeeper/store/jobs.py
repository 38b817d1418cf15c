"""Operations on jobs (sql/jobs.sql): enqueue, reads, lists, retry, cancel, and the pruning of finished jobs.

`insert_many` is the hottest path after the claim: it takes the column arrays `jobkeeper.enqueue.prepare`
built (no object per job), sends at most `CHUNK` jobs per statement, and opens a transaction of its own only
when it must (links to parents, or more than one statement); a plain batch is one statement in autocommit
or in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobkeeper.enqueue import InsertBatch
from jobkeeper.errors import DatabaseError, JobFinishedError
from jobkeeper.store import dependencies
from jobkeeper.store.rows import job_from_row
from jobkeeper.store.run import Atomic, Steps, named
from jobkeeper.types import Job, JobPage, JobStatus, Page, Retried

CHUNK = 5000
"""Jobs per insert statement; larger batches are split inside one transaction."""


def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a list, count or bulk action selects; None (or empty) means any. `payload` is a JSON
    document the payload must contain (no index: lists bound it by a scan window)."""

    tenant_id: uuid.UUID | None = None
    statuses: Sequence[str] | None = None
    type: str | None = None
    queue: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    payload: Mapping[str, Any] | None = None

    def params(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "statuses": list(self.statuses) if self.statuses else None,
            "type": self.type,
            "queue": self.queue,
            "created_after": self.created_after,
            "created_before": self.created_before,
            "payload": json.dumps(self.payload) if self.payload is not None else None,
        }


def insert_many(
    batch: InsertBatch,
    *,
    own_transaction: bool,
    now: datetime | None = None,
    notify: Callable[[], bool] = _always,
) -> Steps[list[Job]]:
    """Insert `batch` and return its jobs in order: a duplicate idempotency key gives the original job
    (`deduplicated`), a job with parents is linked (`dependencies.link`) and comes back in the state that
    left it. `own_transaction` is False inside the caller's transaction (its synchronous_commit is kept).
    `notify` says per statement whether to wake workers (the client's debounce); inside the caller's
    transaction workers are always woken, at its commit."""
    linked = any(batch.depends_on)
    steps = _insert(batch, own_transaction, now, notify)
    # A savepoint inside the caller's transaction when linked: a refused parent undoes the insert. On a
    # connection of its own, one statement needs no transaction block (it commits with the connection's).
    if linked or (own_transaction and len(batch) > CHUNK):
        jobs: list[Job] = yield Atomic(steps)
        return jobs
    return (yield from steps)


def _insert(
    batch: InsertBatch, own_transaction: bool, now: datetime | None, notify: Callable[[], bool]
) -> Steps[list[Job]]:
    rows: list[dict[str, Any]] = []
    for part in _chunks(batch):
        wake = notify() or not own_transaction
        rows.extend(
            (yield named("insert_jobs", part.params(own_transaction=own_transaction, now=now, notify=wake)))
        )
    found = dependencies.links(batch, rows)
    result: list[dict[str, Any]] = []
    if found:
        result = yield from dependencies.link(found)
    jobs: list[Job | None] = []
    missing: list[uuid.UUID] = []
    for row in rows:
        if row["id"] is not None:
            jobs.append(job_from_row(row))
        else:  # a duplicate key: the original job, read below
            jobs.append(None)
            missing.append(row["resolved_id"])
    originals: dict[uuid.UUID, Job] = {}
    if missing:
        originals = {job.id: job for job in (yield from get_many(missing))}
    merged = _merge(jobs, rows, originals)
    return dependencies.apply(found, result, merged, many=len(batch) > 1) if found else merged


def _chunks(batch: InsertBatch) -> Iterator[InsertBatch]:
    if len(batch) <= CHUNK:
        yield batch
        return
    for start in range(0, len(batch), CHUNK):
        part = InsertBatch()
        for name in InsertBatch.__slots__:
            getattr(part, name).extend(getattr(batch, name)[start : start + CHUNK])
        yield part


def _merge(jobs: list[Job | None], rows: list[dict[str, Any]], originals: dict[uuid.UUID, Job]) -> list[Job]:
    merged: list[Job] = []
    for job, row in zip(jobs, rows, strict=True):
        if job is None:
            original = originals.get(row["resolved_id"])
            if original is None:
                raise DatabaseError(
                    f"idempotency key resolved to job {row['resolved_id']}, which no longer exists"
                )
            job = dataclasses.replace(original, deduplicated=True)
        merged.append(job)
    return merged


def get(job_id: uuid.UUID) -> Steps[Job | None]:
    rows = yield named("get_jobs", {"ids": [job_id]})
    return job_from_row(rows[0]) if rows else None


def get_many(job_ids: list[uuid.UUID]) -> Steps[list[Job]]:
    """The jobs of `job_ids` that exist, in no particular order."""
    rows = yield named("get_jobs", {"ids": job_ids})
    return [job_from_row(row) for row in rows]


def detail(job_id: uuid.UUID) -> Steps[dict[str, Any] | None]:
    """The job's row with what the dashboard and `jobs show` add: its tenant's name, retries, worker,
    cancel flag and dead letter."""
    rows = yield named("job_detail", {"id": job_id})
    return rows[0] if rows else None


def diagnose(job_id: uuid.UUID, max_age: float) -> Steps[dict[str, Any] | None]:
    """What decides whether the job can be claimed now (queue pause, limiter, tenant cap, live workers
    heard from within `max_age` seconds, jobs ahead of it, unfinished parents)."""
    rows = yield named("diagnose_job", {"id": job_id, "max_age": max_age})
    return rows[0] if rows else None


def list_page(f: JobFilter, page: Page, *, scan_limit: int) -> Steps[JobPage]:
    """A page of the jobs `f` selects, newest first. A payload filter looks at no more than `scan_limit`
    jobs past the cursor: when its page is not full, `next_before` is where its window ended (None: the
    list ended)."""
    before_created_at, before_id = page.before if page.before is not None else (None, None)
    params = f.params() | {
        "before_created_at": before_created_at,
        "before_id": before_id,
        "limit": page.limit,
        "scan_limit": scan_limit,
    }
    rows = yield named("list_jobs", params)
    jobs = [job_from_row(row) for row in rows]
    next_before: tuple[datetime, uuid.UUID] | None = None
    if len(jobs) == page.limit:
        next_before = (jobs[-1].created_at, jobs[-1].id)
    elif f.payload is not None:
        edge = yield named("list_jobs_edge", params)
        if edge:
            next_before = (edge[0]["created_at"], edge[0]["id"])
    return JobPage(jobs, next_before)


def count_actionable(f: JobFilter, statuses: Sequence[str], cap: int) -> Steps[int]:
    """How many jobs `f` selects in `statuses`, counted up to `cap` + 1."""
    rows = yield named("count_jobs_for_action", f.params() | {"actionable": list(statuses), "cap": cap})
    return int(rows[0]["total"]) if rows else 0


def retry(job_id: uuid.UUID) -> Steps[Retried | None]:
    """Put a failed or cancelled job back to pending (its dead letter marked replayed, its idempotency
    result cleared); None when there is no such job, `changed` False when it was in another state."""
    rows = yield named("retry_job", {"id": job_id})
    if not rows:
        return None
    return Retried(job_from_row(rows[0]), bool(rows[0]["changed"]))


def retry_matching(f: JobFilter, limit: int) -> Steps[int]:
    """Retry the failed and cancelled jobs `f` selects, at most `limit`; how many."""
    rows = yield named("retry_jobs_matching", f.params() | {"limit": limit})
    return len(rows)


def cancel(job_id: uuid.UUID) -> Steps[Job | None]:
    """Cancel a pending or waiting job at once, ask a running one to stop; its waiting dependents are
    settled (cancelled) in the same transaction. None when there is no such job; a cancelled job comes
    back unchanged. Raises `JobFinishedError` when it completed or failed already."""
    rows = yield named("cancel_job", {"id": job_id})
    if not rows:
        return None
    row = rows[0]
    if row["has_dependents"] and row["status"] in dependencies.FINISHED:
        yield from dependencies.settle([job_id])
    job = job_from_row(row)
    if job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
        raise JobFinishedError(job)
    return job


def cancel_matching(f: JobFilter, limit: int) -> Steps[int]:
    """Cancel (or ask to stop) the pending, waiting and running jobs `f` selects, at most `limit`, and
    settle the dependents of those cancelled; how many."""
    rows = yield named("cancel_jobs_matching", f.params() | {"limit": limit}, rows="tuple")
    parents = dependencies.finished_parents(rows)
    if parents:
        yield from dependencies.settle(parents)
    return len(rows)


def prune_finished(*, older_than: float, now: datetime | None, limit: int) -> Steps[int]:
    """Delete at most `limit` jobs finished more than `older_than` seconds ago (see the query for what is
    kept); how many."""
    count: int = yield named(
        "prune_finished_jobs", {"older_than": older_than, "now": now, "limit": limit}, rows="count"
    )
    return count


def prune_idempotency_keys(*, now: datetime | None, limit: int) -> Steps[int]:
    """Delete at most `limit` expired idempotency keys; how many."""
    count: int = yield named("prune_idempotency_keys", {"now": now, "limit": limit}, rows="count")
    return count
