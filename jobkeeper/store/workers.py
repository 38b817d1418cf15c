"""Operations on worker processes (sql/workers.sql): registration, heartbeats, LISTEN, lost workers and
the live-worker views."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobkeeper.store.run import Steps, named
from jobkeeper.types import WorkerInfo


def register(
    *, worker_id: uuid.UUID, queues: Sequence[str], job_types: Sequence[str], concurrency: int
) -> Steps[None]:
    """Record this process (host and pid) as worker `worker_id`, serving `queues` and `job_types`."""
    yield named(
        "register_worker",
        {
            "id": worker_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "queues": list(queues),
            "job_types": list(job_types),
            "concurrency": concurrency,
        },
    )


def stop(worker_id: uuid.UUID) -> Steps[None]:
    """Mark the worker stopped, running nothing."""
    yield named("stop_worker", {"id": worker_id})


def heartbeat(
    *, worker_id: uuid.UUID, ids: list[uuid.UUID], tiers: list[str], running: int
) -> Steps[list[tuple[uuid.UUID, bool]]]:
    """Refresh the worker's row and its running jobs (ids and tiers, in id order). Returns `(id,
    cancel_requested)` for each job still held: one missing is no longer this worker's."""
    rows: list[tuple[uuid.UUID, bool]] = yield named(
        "heartbeat", {"ids": ids, "tiers": tiers, "worker_id": worker_id, "running": running}, rows="tuple"
    )
    return rows


def listen() -> Steps[None]:
    """LISTEN on the channels of new jobs and cancellation requests (on an autocommit connection)."""
    yield named("listen_channels")


def mark_lost(*, lease_seconds: float, now: datetime | None = None) -> Steps[int]:
    """Mark stopped the workers whose heartbeat is older than the lease; returns how many."""
    lost: int = yield named("mark_lost_workers", {"lease_seconds": lease_seconds, "now": now}, rows="count")
    return lost


def count_live(max_age: float) -> Steps[dict[str, Any]]:
    """`{"live", "last_heartbeat_at"}`: workers whose last heartbeat is younger than `max_age` seconds."""
    rows = yield named("count_live_workers", {"max_age": max_age})
    counted: dict[str, Any] = rows[0]
    return counted


def list_live(max_age: float, tenant_id: uuid.UUID | None = None) -> Steps[list[WorkerInfo]]:
    """Workers whose last heartbeat is younger than `max_age` seconds, by host and pid. For a tenant, only
    the queues and job types it may know are named."""
    rows = yield named("list_live_workers", {"max_age": max_age, "tenant_id": tenant_id})
    return [WorkerInfo(**row) for row in rows]
