"""Operations on job dependencies (sql/dependencies.sql, docs/concepts.md "Dependencies").

A job with parents is inserted `waiting` (`jobs.insert_many`), then `link` joins it to its parents in the
same transaction, with the parents locked: a parent that completes concurrently is seen either before (the
child is pending at once) or after (its completion's `settle` releases the child). `links`, `apply`,
`finished_parents` and `needs_settle` are the pure steps around those statements.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobkeeper.enqueue import InsertBatch
from jobkeeper.errors import InvalidJobError
from jobkeeper.store.run import Atomic, Steps, named
from jobkeeper.types import Job, JobStatus

FINISHED = ("completed", "failed", "cancelled")


@dataclass(slots=True)
class Links:
    """The (child, parent) pairs of `add_dependencies`, for the jobs this call created."""

    child_ids: list[uuid.UUID] = field(default_factory=list)
    parent_ids: list[uuid.UUID] = field(default_factory=list)
    tenant_ids: list[uuid.UUID] = field(default_factory=list)
    index_of: dict[uuid.UUID, int] = field(default_factory=dict)
    """Child id → its index in the call, to name it in an error."""

    def __bool__(self) -> bool:
        return bool(self.child_ids)


def links(batch: InsertBatch, rows: list[dict[str, Any]]) -> Links:
    """Pairs for every job the insert created that has parents. A parent given by index is the job that
    entry resolved to (the original one when its idempotency key was taken). A job whose own key was taken
    is not created, so its parents are not linked: the original job keeps its own."""
    found = Links()
    for index, (parents, row) in enumerate(zip(batch.depends_on, rows, strict=True)):
        if not parents or row["id"] is None:
            continue
        child = row["id"]
        found.index_of[child] = index
        for parent in parents:
            parent_id = rows[parent]["resolved_id"] if isinstance(parent, int) else parent
            found.child_ids.append(child)
            found.parent_ids.append(parent_id)
            found.tenant_ids.append(batch.tenant_ids[index])
    return found


def link(found: Links) -> Steps[list[dict[str, Any]]]:
    """Link the created children to their parents and settle those whose parents have all finished; the
    rows say which children changed (`settled`) and which parents do not exist (`missing`)."""
    rows: list[dict[str, Any]] = yield named(
        "add_dependencies",
        {"child_ids": found.child_ids, "parent_ids": found.parent_ids, "tenant_ids": found.tenant_ids},
    )
    return rows


def apply(found: Links, result: list[dict[str, Any]], jobs: list[Job], *, many: bool) -> list[Job]:
    """Raise for a parent that does not exist (or is another tenant's); otherwise return the jobs with the
    state `link` settled them in (pending, or cancelled by a failed parent)."""
    for row in result:
        if row["kind"] == "missing":
            index = found.index_of[row["job_id"]]
            error = InvalidJobError(
                "depends_on",
                f"no job {row['parent_id']} for this tenant (unknown id or another tenant's job)",
            )
            if many:
                error.at(index)
            raise error
    settled = {row["job_id"]: row for row in result if row["kind"] == "settled"}
    if not settled:
        return jobs
    changed: list[Job] = []
    for job in jobs:
        state = settled.get(job.id)
        if state is not None and not job.deduplicated:
            job = dataclasses.replace(
                job,
                status=JobStatus(state["status"]),
                last_error=state["last_error"],
                completed_at=state["completed_at"],
            )
        changed.append(job)
    return changed


def finished_parents(rows: Iterable[Sequence[Any]]) -> list[uuid.UUID]:
    """Ids of jobs that just finished and have dependents, from `(id, status, has_dependents)` tuples: the
    caller runs `settle` for them once their outcome has committed."""
    return [row[0] for row in rows if row[2] and row[1] in FINISHED]


def needs_settle(rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """`finished_parents` for rows as dicts (the worker's completion until it reads tuples)."""
    return [row["id"] for row in rows if row.get("has_dependents") and row["status"] in FINISHED]


def settle(parent_ids: list[uuid.UUID]) -> Steps[list[tuple[Any, ...]]]:
    """Release or cancel the waiting dependents of `parent_ids`, run after their outcomes committed
    (idempotent); `(id, status, has_dependents)` of each job it changed. Ids are sent sorted: children are
    locked in id order, so concurrent settles never deadlock."""
    rows: list[tuple[Any, ...]] = yield named("settle_dependents", {"ids": sorted(parent_ids)}, rows="tuple")
    return rows


def sweep(limit: int) -> Steps[list[tuple[Any, ...]]]:
    """The maintenance leader's safety net, in one transaction: settle at most `limit` waiting jobs whose
    parents have all finished, and the waiting dependents of those it cancelled. `(id, status,
    has_dependents)` of each job the sweep changed."""
    rows: list[tuple[Any, ...]] = yield Atomic(_sweep(limit))
    return rows


def _sweep(limit: int) -> Steps[list[tuple[Any, ...]]]:
    rows: list[tuple[Any, ...]] = yield named("sweep_waiting_jobs", {"limit": limit}, rows="tuple")
    parents = finished_parents(rows)
    if parents:
        yield named("settle_dependents", {"ids": parents}, rows="tuple")
    return rows


def parents(job_id: uuid.UUID) -> Steps[list[uuid.UUID]]:
    """The ids of the jobs `job_id` depends on, in id order."""
    rows = yield named("job_parents", {"id": job_id})
    return [row["depends_on"] for row in rows]


def related(job_id: uuid.UUID) -> Steps[list[dict[str, Any]]]:
    """The job's parents and children with their states (`relation` is "parent" or "child"), at most 500."""
    rows: list[dict[str, Any]] = yield named("job_relations", {"id": job_id})
    return rows
