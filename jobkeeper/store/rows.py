"""Conversion of database rows into the frozen row types."""

from __future__ import annotations

from typing import Any

from jobkeeper.types import Backoff, Job, JobStatus, JobType, Queue, Tier


def job_from_row(row: dict[str, Any]) -> Job:
    return Job(
        id=row["id"],
        tenant_id=row["tenant_id"],
        queue=row["queue"],
        type=row["type"],
        payload=row["payload"],
        status=JobStatus(row["status"]),
        tier=Tier(row["tier"]),
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        last_error=row["last_error"],
        errors=row["errors"],
        result=row["result"],
        progress=row["progress"],
        idempotency_key=row["idempotency_key"],
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def queue_from_row(row: dict[str, Any]) -> Queue:
    return Queue(
        name=row["name"],
        tenant_id=row["tenant_id"],
        tier=Tier(row["tier"]),
        max_attempts=row["max_attempts"],
        backoff=Backoff(row["backoff"]),
        backoff_base_seconds=row["backoff_base_seconds"],
        backoff_max_seconds=row["backoff_max_seconds"],
        backoff_jitter=row["backoff_jitter"],
        timeout_seconds=row["timeout_seconds"],
        default_priority=row["default_priority"],
        paused=row["paused"],
    )


def job_type_from_row(row: dict[str, Any]) -> JobType:
    return JobType(
        name=row["name"],
        queue=row["queue"],
        max_attempts=row["max_attempts"],
        timeout_seconds=row["timeout_seconds"],
        priority=row["priority"],
        limiter=row["limiter"],
        idempotency_ttl_seconds=row["idempotency_ttl_seconds"],
    )
