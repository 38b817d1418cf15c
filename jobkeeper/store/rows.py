"""Conversion of database rows into the frozen row types."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from jobkeeper.types import Backoff, Job, JobStatus, JobType, Queue, Tier

T = TypeVar("T")


_COLUMNS: dict[type, tuple[str, ...]] = {}


def _columns(cls: type) -> tuple[str, ...]:
    names = _COLUMNS.get(cls)
    if names is None:
        names = _COLUMNS[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


def from_row(cls: type[T], row: Mapping[str, Any], **converted: Any) -> T:
    """A row type (a dataclass) from the row's columns named as its fields; `converted` gives the fields
    that need more than the column's value (enums). Jobs keep `job_from_row`: it is on the claim's path
    and spells its fields out, with no dict per row."""
    return cls(**({name: row[name] for name in _columns(cls)} | converted))


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
    return from_row(Queue, row, tier=Tier(row["tier"]), backoff=Backoff(row["backoff"]))


def job_type_from_row(row: dict[str, Any]) -> JobType:
    return from_row(JobType, row)
