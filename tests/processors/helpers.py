"""Helpers of the processor tests: jobs and contexts built by hand, settings, handlers from a registry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from jobkeeper import DEV_TENANT_ID, Job, JobStatus, Settings, Tier
from jobkeeper.store.outcomes import JobRef
from jobkeeper.worker import JobContext, Registry

QUEUES = {
    "send-email": ("communication", Tier.FAST),
    "send-sms": ("communication", Tier.FAST),
    "send-push": ("communication", Tier.FAST),
    "analytics-track": ("background", Tier.EPHEMERAL),
    "cleanup-old-data": ("background", Tier.EPHEMERAL),
    "generate-report": ("background", Tier.EPHEMERAL),
}


def make_job(
    job_type: str,
    payload: Any,
    *,
    tenant_id: uuid.UUID = DEV_TENANT_ID,
    attempts: int = 1,
    created_at: datetime | None = None,
) -> Job:
    queue, tier = QUEUES[job_type]
    now = datetime.now(UTC)
    return Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        queue=queue,
        type=job_type,
        payload=payload,
        status=JobStatus.PROCESSING,
        tier=tier,
        priority=5,
        attempts=attempts,
        max_attempts=3,
        last_error=None,
        errors=[],
        result=None,
        progress=None,
        idempotency_key=None,
        scheduled_at=created_at or now,
        started_at=now,
        completed_at=None,
        created_at=created_at or now,
        updated_at=now,
    )


class Progress:
    def __init__(self) -> None:
        self.values: list[str] = []

    def __call__(self, ref: JobRef, value: str) -> None:
        self.values.append(value)


def make_ctx(job_type: str, payload: Any, **job: Any) -> JobContext:
    return JobContext(
        make_job(job_type, payload, **job), timeout=30.0, worker_id=None, progress_sink=Progress()
    )


def settings(**overrides: Any) -> Settings:
    """Settings from no environment at all, plus `overrides` (short timeouts: everything is local)."""
    overrides.setdefault("provider_timeout", 5.0)
    return Settings.from_env({}, **overrides)


def handler(module: ModuleType, current: Settings | None, **options: Any) -> Any:
    """The handler `module.register` installs, registered in a fresh registry."""
    registry = Registry()
    module.register(registry, current, **options)
    return registry[module.JOB_TYPE].handler


async def run(module: ModuleType, current: Settings, payload: Any, **job: Any) -> Any:
    """Run the module's handler once, as the worker would, with a context built by hand."""
    ctx = make_ctx(module.JOB_TYPE, payload, **job)
    return await handler(module, current)(payload, ctx)
