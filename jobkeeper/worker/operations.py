"""The worker's database operations, each one named statement (`store/sql/outcomes.sql`, `workers.sql`,
`queues.sql`)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from jobkeeper.catalog import load_catalog
from jobkeeper.store.queries import query
from jobkeeper.store.rows import job_from_row
from jobkeeper.worker.executor import Claimed, Policies
from jobkeeper.worker.registry import Registry

Conn = psycopg.AsyncConnection[Any]


async def claim(
    conn: Conn,
    *,
    worker_id: uuid.UUID,
    types: Sequence[str],
    limit: int,
    queues: Sequence[str] | None = None,
    now: datetime | None = None,
) -> list[Claimed]:
    """Claim up to `limit` ready jobs of `types` from the open queues (all, or `queues`), fairly between
    tenants; they are returned highest priority first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        query("claim_jobs"),
        {
            "worker_id": worker_id,
            "types": list(types),
            "limit": limit,
            "queues": list(queues) if queues is not None else None,
            "now": now,
        },
        binary=True,
    )
    return [Claimed(job_from_row(row), row["timeout_seconds"]) for row in await cur.fetchall()]


async def load_policies(conn: Conn) -> Policies:
    catalog = await load_catalog(conn)
    return Policies(queues=catalog.queues, job_types=catalog.job_types)


async def register_job_types(conn: Conn, registry: Registry, default_queue: str) -> None:
    """Write the `@task` options of every registered type to `jobkeeper.job_types` (enqueue defaults)."""
    specs = list(registry)
    await conn.execute(
        query("register_job_types"),
        {
            "names": [s.name for s in specs],
            "queues": [s.queue for s in specs],
            "max_attempts": [s.max_attempts for s in specs],
            "timeouts": [s.timeout for s in specs],
            "priorities": [s.priority for s in specs],
            "default_queue": default_queue,
        },
    )


async def register_worker(
    conn: Conn, worker_id: uuid.UUID, *, queues: Sequence[str], job_types: Sequence[str], concurrency: int
) -> None:
    await conn.execute(
        query("register_worker"),
        {
            "id": worker_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "queues": list(queues),
            "job_types": list(job_types),
            "concurrency": concurrency,
        },
    )


async def stop_worker(conn: Conn, worker_id: uuid.UUID) -> None:
    await conn.execute(query("stop_worker"), {"id": worker_id})
