"""Job dependencies at enqueue: which inserted jobs to link to which parents, and what the link said.

A job with parents is inserted `waiting` (`insert_jobs`), then `add_dependencies` links it in the same
transaction, with its parents locked: a parent that completes concurrently is seen either before (the
child is pending at once) or after (its completion's settle releases the child). Nothing here does I/O;
both clients run the two statements and call these helpers between them.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from jobkeeper.enqueue import InsertBatch
from jobkeeper.errors import InvalidJobError
from jobkeeper.types import Job, JobStatus


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

    def params(self) -> dict[str, Any]:
        return {"child_ids": self.child_ids, "parent_ids": self.parent_ids, "tenant_ids": self.tenant_ids}


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


def apply(found: Links, result: list[dict[str, Any]], jobs: list[Job], *, many: bool) -> list[Job]:
    """Raise for a parent that does not exist (or is another tenant's); otherwise return the jobs with the
    state `add_dependencies` settled them in (pending, or cancelled by a failed parent)."""
    for row in result:
        if row["kind"] == "missing":
            index = found.index_of[row["job_id"]]
            error = InvalidJobError(
                "depends_on",
                f"no job {row['parent_id']} for this tenant (unknown id or another tenant's job)",
            )
            if many:
                error.locate(f"jobs[{index}]")
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


def needs_settle(rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Ids of jobs that just finished and have dependents: the caller runs `settle_dependents` for them
    once their outcome has committed."""
    return [
        row["id"]
        for row in rows
        if row.get("has_dependents") and row["status"] in ("completed", "failed", "cancelled")
    ]
