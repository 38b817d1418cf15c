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
    """Durability tier of a queue (DESIGN §2)."""

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
