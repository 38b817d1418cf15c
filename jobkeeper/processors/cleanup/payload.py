"""The payload of `cleanup-old-data`: retention horizons in seconds, every one optional."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from jobkeeper.processors.fields import Payload

JOB_TYPE = "cleanup-old-data"
MIN_HORIZON = 3600
"""Pruning acts on every tenant's history: a payload cannot make a horizon shorter than an hour."""

Horizon = Annotated[
    float, Field(ge=MIN_HORIZON, le=100 * 365 * 86400, description="Seconds, at least one hour")
]
Count = Annotated[StrictInt, Field(ge=1, le=100_000)]


class CleanupOldData(Payload):
    """The leader's retention, on demand, over every tenant's history (platform admins only)."""

    finished_jobs: Horizon | None = None
    queue_metrics: Horizon | None = None
    acknowledged_alerts: Horizon | None = None
    batch: Count | None = None
    max_batches: Count | None = None


MODELS: dict[str, type[Payload]] = {JOB_TYPE: CleanupOldData}
