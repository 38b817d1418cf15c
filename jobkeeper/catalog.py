"""A cached snapshot of the queues and job types, used to resolve and validate enqueue requests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from jobkeeper.types import JobType, Queue

CATALOG_TTL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Catalog:
    queues: dict[str, Queue]
    job_types: dict[str, JobType]
    loaded_at: float = field(default_factory=time.monotonic)

    def is_stale(self, ttl: float = CATALOG_TTL_SECONDS) -> bool:
        return time.monotonic() - self.loaded_at > ttl
