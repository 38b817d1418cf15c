"""Operations on metrics (sql/metrics.sql): the Prometheus scrape, queue metric snapshots and their
history, and the inputs of the alert checks. Rows are wide aggregates, so they stay dicts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobkeeper.store.run import Steps, named

Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one scrape read: the names an anonymous scrape may show, each queue's pause state, and the
    rows of the depth, finished, dead-letter, limiter and alert series."""

    shared_queues: frozenset[str]
    shared_job_types: frozenset[str]
    shared_limiters: frozenset[str]
    queues: dict[str, bool]
    depth: Rows
    finished: Rows
    dead_letters: Rows
    limiters: Rows
    alerts: Rows
    live_workers: int


def scrape(*, window: float, bounds: Sequence[float], worker_max_age: float) -> Steps[Scrape]:
    """Everything `/metrics` exports from the database, read in one transaction of the caller's:
    jobs finished within `window` seconds (run times bucketed by `bounds`) and workers with a heartbeat
    within `worker_max_age` seconds."""
    shared = yield named("metrics_shared_names")
    queues = yield named("load_queues")
    depth = yield named("metrics_depth", {"window": window})
    finished = yield named("metrics_finished", {"window": window, "bounds": list(bounds)})
    dead = yield named("metrics_dead_letters", {"window": window})
    # The limiters' and the workers' queries belong to their own subjects (sql/limiters.sql, workers.sql).
    limiters = yield named("api_metrics_limiters")
    alerts = yield named("metrics_alerts", {"window": window})
    workers = yield named("api_live_workers", {"max_age": worker_max_age})
    names = shared[0]
    return Scrape(
        shared_queues=frozenset(names["queues"]),
        shared_job_types=frozenset(names["job_types"]),
        shared_limiters=frozenset(names["limiters"]),
        queues={row["name"]: row["paused"] for row in queues},
        depth=depth,
        finished=finished,
        dead_letters=dead,
        limiters=limiters,
        alerts=alerts,
        live_workers=int(workers[0]["live"]) if workers else 0,
    )


def history(queue: str, tenant_id: uuid.UUID | None, *, since: datetime, limit: int) -> Steps[Rows]:
    """Snapshots of `queue` since `since`, newest first, at most `limit`; `tenant_id` None: the rows of all
    tenants together (platform admins)."""
    rows: Rows = yield named(
        "queue_metrics_history", {"queue": queue, "tenant_id": tenant_id, "since": since, "limit": limit}
    )
    return rows


def recent(tenant_id: uuid.UUID | None, window: float) -> Steps[Rows]:
    """Every queue's snapshots of the last `window` seconds, by queue and oldest first: the tenant's own
    rows, or the all-tenants rows for None."""
    rows: Rows = yield named("queue_metrics_recent", {"tenant_id": tenant_id, "window": window})
    return rows


def write_snapshot(*, window: float, now: datetime | None = None) -> Steps[int]:
    """Write one snapshot row per queue (and per queue and tenant with activity), finished counts over
    the last `window` seconds; returns the rows written."""
    rows = yield named("snapshot_queue_metrics", {"window": window, "now": now})
    return len(rows)


def prune(*, older_than: float, now: datetime | None, limit: int) -> Steps[int]:
    """Delete up to `limit` snapshots older than `older_than` seconds; returns how many."""
    deleted: int = yield named(
        "prune_queue_metrics", {"older_than": older_than, "now": now, "limit": limit}, rows="count"
    )
    return deleted


def alert_inputs(*, rate_window: float, worker_lease: float, now: datetime | None = None) -> Steps[Rows]:
    """Per queue, what the alert rules read: depth, oldest wait, completed and failed jobs within
    `rate_window` seconds, and live workers serving it."""
    rows: Rows = yield named(
        "alert_queue_stats", {"now": now, "rate_window": rate_window, "worker_lease": worker_lease}
    )
    return rows


def unhandled_job_types(*, worker_lease: float, now: datetime | None = None) -> Steps[Rows]:
    """Ready jobs, per queue and type, that no live worker has a handler for (none while no worker
    lives)."""
    rows: Rows = yield named("unhandled_job_types", {"now": now, "worker_lease": worker_lease})
    return rows
