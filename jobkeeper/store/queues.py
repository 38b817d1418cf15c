"""Operations on queues and job types, the catalog (sql/queues.sql): read it, declare and register job
types, count a queue's jobs, pause and clean a queue."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from jobkeeper.catalog import Catalog, catalog_from_rows
from jobkeeper.store.rows import from_row, job_type_from_row, queue_from_row
from jobkeeper.store.run import Steps, named
from jobkeeper.types import JobType, Queue, QueueStats, Tier


def load_catalog() -> Steps[Catalog]:
    """Every queue and job type the connection may see, in two small queries."""
    queue_rows = yield named("load_queues")
    type_rows = yield named("load_job_types")
    return catalog_from_rows(queue_rows, type_rows)


def list_queues() -> Steps[list[Queue]]:
    """Every queue the connection may see (shared ones and its tenant's own), by name."""
    rows = yield named("load_queues")
    return [queue_from_row(row) for row in rows]


def list_job_types() -> Steps[list[JobType]]:
    rows = yield named("load_job_types")
    return [job_type_from_row(row) for row in rows]


class Declared(NamedTuple):
    job_type: JobType
    created: bool
    """False when the type existed already (only its queue may have changed)."""


def declare_job_type(name: str, queue: str | None, *, default_queue: str) -> Steps[Declared]:
    """Make a job type known before a worker handling it has run. A new type goes to `queue`, else to
    `default_queue`; declaring a known type again moves it only when `queue` is given."""
    rows = yield named("declare_job_type", {"name": name, "queue": queue, "default_queue": default_queue})
    row = rows[0]
    return Declared(job_type_from_row(row), row["created"])


class TypeSpec(NamedTuple):
    """A job type's `@task` options; None leaves the stored value (or the default) as it is."""

    name: str
    queue: str | None
    max_attempts: int | None
    timeout: float | None
    priority: int | None


def register_job_types(specs: Sequence[TypeSpec], *, default_queue: str) -> Steps[None]:
    """Write the `@task` options of a worker's types as their enqueue defaults, in one statement."""
    yield named(
        "register_job_types",
        {
            "names": [s.name for s in specs],
            "queues": [s.queue for s in specs],
            "max_attempts": [s.max_attempts for s in specs],
            "timeouts": [s.timeout for s in specs],
            "priorities": [s.priority for s in specs],
            "default_queue": default_queue,
        },
    )


def _stats_from_row(row: dict[str, Any]) -> QueueStats:
    return from_row(QueueStats, row, tier=Tier(row["tier"]))


def stats(tenant_id: uuid.UUID | None, queue: str | None = None) -> Steps[builtins.list[QueueStats]]:
    """Every queue's jobs counted by state (exactly), or only `queue`'s (an empty list: no such queue for
    the caller). `tenant_id` narrows the counts to one tenant; None counts every tenant the role sees."""
    rows = yield named("queue_stats", {"tenant_id": tenant_id, "queue": queue})
    return [_stats_from_row(row) for row in rows]


def counts(tenant_id: uuid.UUID | None, *, cap: int, finished_cap: int) -> Steps[list[dict[str, Any]]]:
    """The overview's counts per queue, each stopping at its cap + 1 (`cap` for unfinished states,
    `finished_cap` for finished ones and dead letters): cheap on a long history. One dict per queue."""
    rows: list[dict[str, Any]] = yield named(
        "queue_counts", {"tenant_id": tenant_id, "cap": cap, "finished_cap": finished_cap}
    )
    return rows


def set_paused(name: str, paused: bool) -> Steps[Queue | None]:
    """Pause or resume queue `name`; None when there is no such queue."""
    rows = yield named("set_queue_paused", {"queue": name, "paused": paused})
    return queue_from_row(rows[0]) if rows else None


def clean(
    queue: str, statuses: Sequence[str], *, grace: float, tenant_id: uuid.UUID | None, limit: int
) -> Steps[int]:
    """Delete up to `limit` jobs of `queue` in `statuses` that finished more than `grace` seconds ago
    (jobs with a live idempotency key, or with dependents still waiting, are kept); returns how many."""
    deleted: int = yield named(
        "clean_queue",
        {
            "queue": queue,
            "statuses": list(statuses),
            "grace_seconds": grace,
            "limit": limit,
            "tenant_id": tenant_id,
        },
        rows="count",
    )
    return deleted
