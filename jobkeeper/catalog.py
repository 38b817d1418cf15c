"""A cached snapshot of the queues and job types, used to resolve and validate enqueue requests. The store
reads it (`jobkeeper.store.queues.load_catalog`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from jobkeeper.store.rows import job_type_from_row, queue_from_row
from jobkeeper.types import JobType, Queue

CATALOG_TTL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Catalog:
    queues: dict[str, Queue]
    job_types: dict[str, JobType]
    loaded_at: float = field(default_factory=time.monotonic)

    def is_stale(self, ttl: float = CATALOG_TTL_SECONDS) -> bool:
        return time.monotonic() - self.loaded_at > ttl


def catalog_from_rows(queue_rows: list[dict[str, Any]], type_rows: list[dict[str, Any]]) -> Catalog:
    return Catalog(
        queues={row["name"]: queue_from_row(row) for row in queue_rows},
        job_types={row["name"]: job_type_from_row(row) for row in type_rows},
    )


async def load_catalog(conn: Any) -> Catalog:
    """`queues.load_catalog()` run on the async connection `conn`. A shim for the callers that have not
    switched to the store operation yet (issue 16: WP1, WP2, WP4); WP5 removes it. `conn` is typed Any so
    that this module names no driver: the CLI's `--help` imports it through enqueue."""
    from jobkeeper.store import queues
    from jobkeeper.store.run import run

    return await run(conn, queues.load_catalog())
