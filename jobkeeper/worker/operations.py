"""What is left of the worker's own database calls: writing the registered job types, until the queues'
store module has that operation (issue 16, WP3: `store.queues.register_job_types`); then this goes."""

from __future__ import annotations

from typing import Any

import psycopg

from jobkeeper.store.errors import translate
from jobkeeper.store.queries import query
from jobkeeper.worker.registry import Registry


async def register_job_types(
    conn: psycopg.AsyncConnection[Any], registry: Registry, default_queue: str
) -> None:
    """Write the `@task` options of every registered type to `jobkeeper.job_types` (enqueue defaults)."""
    specs = list(registry)
    try:
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
    except psycopg.Error as exc:
        raise translate(exc) from exc
