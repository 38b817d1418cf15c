"""Row types and enumerations shared by every layer. Imports nothing from the package."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

DEV_TENANT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")

JsonValue = Any
"""A value that survives a round trip through JSON (dict, list, str, int, float, bool, None)."""


class JobStatus(StrEnum):
    WAITING = "waiting"
    """Waiting for the jobs it depends on to complete (docs/concepts.md, "Dependencies")."""
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Tier(StrEnum):
    """Durability tier of a queue (docs/concepts.md#durability-tiers)."""

    DURABLE = "durable"
    """Synchronous commit: survives process, OS and power loss once enqueue returns."""
    FAST = "fast"
    """Asynchronous commit: an OS crash may drop the last few hundred ms of changes."""
    EPHEMERAL = "ephemeral"
    """UNLOGGED rows: survive a process crash, emptied by a PostgreSQL crash."""


class Backoff(StrEnum):
    EXPONENTIAL = "exponential"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    tenant_id: uuid.UUID
    queue: str
    type: str
    payload: JsonValue
    status: JobStatus
    tier: Tier
    priority: int
    attempts: int
    max_attempts: int
    last_error: str | None
    errors: list[dict[str, Any]]
    result: JsonValue
    progress: JsonValue
    idempotency_key: str | None
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deduplicated: bool = False
    """True when an enqueue returned this existing job because its idempotency key was already taken."""

    def __repr__(self) -> str:
        # Short enough to read in a log or a REPL: the error history (tracebacks) and result are counted
        # or cut, not printed; every field is still an attribute.
        return (
            f"Job(id={str(self.id)!r}, type={self.type!r}, queue={self.queue!r}, "
            f"status={self.status.value!r}, attempts={self.attempts}/{self.max_attempts}, "
            f"payload={_clip(repr(self.payload))}, last_error={_clip(repr(self.last_error))}, "
            f"errors=[{len(self.errors)} recorded], scheduled_at={self.scheduled_at.isoformat()!r})"
        )


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    tenant_id: uuid.UUID | None
    tier: Tier
    max_attempts: int
    backoff: Backoff
    backoff_base_seconds: float
    backoff_max_seconds: float
    backoff_jitter: bool
    timeout_seconds: float
    default_priority: int
    paused: bool


@dataclass(frozen=True, slots=True)
class JobType:
    """A job type known to the database: its home queue and per-type overrides."""

    name: str
    queue: str
    max_attempts: int | None
    timeout_seconds: float | None
    priority: int | None
    limiter: str | None
    idempotency_ttl_seconds: float | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that failed for good, with its payload and every attempt's error; kept until purged."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    job_id: uuid.UUID
    queue: str
    type: str
    payload: JsonValue
    priority: int
    attempts: int
    max_attempts: int
    last_error: str | None
    errors: list[dict[str, Any]]
    idempotency_key: str | None
    failed_at: datetime
    replayed_at: datetime | None
    replayed_job_id: uuid.UUID | None


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Result types of the store's operations, declared here once so that callers moving onto the store add
# none. Wide aggregate rows (metrics, reports, a job's diagnosis) stay dicts typed
# where they are used.


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule (`jobkeeper.schedules`): it enqueues a job of `job_type` on `queue` at each slot."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    cron: str
    timezone: str
    queue: str
    job_type: str
    payload: JsonValue
    priority: int | None
    active: bool
    missed_policy: str
    catch_up_window_seconds: float
    overlap_policy: str
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_job_id: uuid.UUID | None
    missed_runs: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """One raised alert (`jobkeeper.alert_history`); tenant and queue are None for platform-wide rules."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    queue: str | None
    rule: str
    severity: str
    message: str
    details: dict[str, Any]
    deliveries: JsonValue
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Limiter:
    """An outbound rate limiter with its tokens as of now and the jobs running under it (`in_flight`,
    counted from processing jobs)."""

    name: str
    tokens: float
    burst: int
    rate_per_second: float
    max_concurrency: int | None
    limiter_group: str | None
    waits: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker process as its registration and heartbeats describe it."""

    id: uuid.UUID
    hostname: str
    pid: int
    queues: list[str]
    job_types: list[str]
    concurrency: int
    running: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue's jobs counted by state, as seen by the caller's tenant (every tenant for platform admins),
    at `measured_at` on the database clock."""

    name: str
    tenant_id: uuid.UUID | None
    tier: Tier
    paused: bool
    waiting: int
    scheduled: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    awaiting_dependencies: int
    oldest_waiting_seconds: float | None
    dead_letters: int
    measured_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    """A keyset page: rows strictly older than `before` (created_at, id), at most `limit` of them."""

    before: tuple[datetime, uuid.UUID] | None
    limit: int


@dataclass(frozen=True, slots=True)
class JobPage:
    """A page of jobs, newest first, and where the next page starts (None: this was the last)."""

    jobs: list[Job]
    next_before: tuple[datetime, uuid.UUID] | None


@dataclass(frozen=True, slots=True)
class Retried:
    """A job after a retry request; `changed` is False when it was not in a state that can be retried."""

    job: Job
    changed: bool
