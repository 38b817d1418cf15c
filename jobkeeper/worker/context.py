"""What a handler gets besides its payload: the job, its attempt, progress reporting, a cancellation
signal and a logger bound to the job."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, MutableMapping
from typing import Any

from jobkeeper.store.outcomes import JobRef
from jobkeeper.types import Job

log = logging.getLogger("jobkeeper.job")

ProgressSink = Callable[[JobRef, str], None]
"""Receives a job's latest progress as JSON text; called from any thread, never blocks on I/O."""


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the job's id, queue, type, attempt and tenant to every record (as `extra` fields, for
    structured logs) and a short `[job …]` prefix to the message, for plain ones."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[job {extra['job_id']} {extra['job_type']} attempt {extra['attempt']}] {msg}", kwargs


def job_logger(job: Job) -> JobLogger:
    return JobLogger(
        log,
        {
            "job_id": str(job.id),
            "queue": job.queue,
            "job_type": job.type,
            "attempt": job.attempts,
            "tenant_id": str(job.tenant_id),
        },
    )


def progress_json(current: float, total: float | None, note: str | None) -> str:
    """The progress column's value: {"current", "total", "percent", "note"}."""
    if not math.isfinite(current) or (total is not None and not math.isfinite(total)):
        raise ValueError("progress values must be finite numbers")
    percent = round(100.0 * current / total, 2) if total else None
    value = {"current": current, "total": total, "percent": percent, "note": note}
    return json.dumps(value, ensure_ascii=False).replace("\\u0000", "")


class JobContext:
    """Passed to every handler as `ctx`.

    - `ctx.job`: the job row as claimed (`ctx.job.payload`, `.tenant_id`, `.idempotency_key`, …).
    - `ctx.attempt`: 1 for the first run; a snooze gives the attempt back.
    - `await ctx.progress(n, total, note)`: stored on the job's `progress` column within milliseconds,
      without waiting for the database (`ctx.set_progress` is the same for sync handlers).
    - `ctx.cancelled`: an `asyncio.Event` set when the job is cancelled, times out or the worker shuts
      down; `ctx.is_cancelled` reads it from any thread. An async handler is also cancelled outright.
    - `ctx.logger`: a logger whose records carry the job's id, queue, type, attempt and tenant.
    """

    def __init__(self, job: Job, *, timeout: float, worker_id: Any, progress_sink: ProgressSink) -> None:
        self.job = job
        self.attempt = job.attempts
        self.timeout = timeout
        self.worker_id = worker_id
        self.cancelled = asyncio.Event()
        self._logger: JobLogger | None = None
        self._sink = progress_sink
        self._ref = JobRef.of(job)
        self._cancelled_flag = False

    @property
    def logger(self) -> JobLogger:
        if self._logger is None:  # built on first use: most jobs never log
            self._logger = job_logger(self.job)
        return self._logger

    @property
    def is_cancelled(self) -> bool:
        return self._cancelled_flag

    def set_progress(self, current: float, total: float | None = None, note: str | None = None) -> None:
        """Record progress (thread-safe, returns at once); the latest value per job is written."""
        self._sink(self._ref, progress_json(current, total, note))

    async def progress(self, current: float, total: float | None = None, note: str | None = None) -> None:
        self.set_progress(current, total, note)

    def _signal_cancel(self) -> None:
        """Called on the event loop by the worker."""
        self._cancelled_flag = True
        self.cancelled.set()
