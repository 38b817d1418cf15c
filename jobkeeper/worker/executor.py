"""Runs one attempt of a job: the handler (async, in a thread, or in a child process) under its timeout,
and turns what happened into an `Outcome`.

Timeout, most specific first: the job's `timeout_seconds`, the `@task` timeout, the job type's row, the
queue's. Backoff: the `@task` backoff, else the queue's policy. An async handler is cancelled at its
timeout (one that ignores the cancellation is abandoned by the worker soon after, its outcome written
without it); a sync handler's thread cannot be stopped, so its late result is discarded (use
`isolation="process"` for work that must be killed); a process is killed.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jobkeeper.catalog import Catalog
from jobkeeper.errors import Cancel, PermanentError, Retry, Snooze
from jobkeeper.store.outcomes import Claimed, JobRef
from jobkeeper.types import Job
from jobkeeper.worker.backoff import BackoffPolicy, backoff_delay
from jobkeeper.worker.context import JobContext, ProgressSink, job_logger
from jobkeeper.worker.isolation import ChildError, run_in_process
from jobkeeper.worker.outcomes import Kind, Outcome, encode_result, error_entry, exception_entry
from jobkeeper.worker.registry import Registry, TaskSpec

DEFAULT_TIMEOUT = 300.0
DEFAULT_BACKOFF = BackoffPolicy.fixed(10.0)


@dataclass(slots=True)
class Policies:
    """Timeouts and backoff as the queue and job-type settings say. The catalog is replaced now and then by
    the worker; this one object is shared by the claim loop and the executor, so they see the same one."""

    catalog: Catalog = field(default_factory=lambda: Catalog(queues={}, job_types={}))

    def timeout(self, spec: TaskSpec | None, claimed: Claimed) -> float:
        job_type = self.catalog.job_types.get(claimed.job.type)
        queue = self.catalog.queues.get(claimed.job.queue)
        for value in (
            claimed.timeout_seconds,
            spec.timeout if spec else None,
            job_type.timeout_seconds if job_type else None,
            queue.timeout_seconds if queue else None,
        ):
            if value is not None and math.isfinite(value) and value > 0:
                return value
        return DEFAULT_TIMEOUT

    def backoff(self, spec: TaskSpec | None, queue_name: str) -> BackoffPolicy:
        if spec is not None and spec.backoff is not None:
            return spec.backoff
        queue = self.catalog.queues.get(queue_name)
        return BackoffPolicy.of_queue(queue) if queue is not None else DEFAULT_BACKOFF


class Executor:
    def __init__(
        self,
        registry: Registry,
        policies: Policies,
        threads: ThreadPoolExecutor,
        progress_sink: ProgressSink,
        *,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.registry = registry
        self.policies = policies
        self.threads = threads
        self.progress_sink = progress_sink
        self.random = random

    def context(self, claimed: Claimed, worker_id: Any) -> JobContext:
        spec = self.registry.get(claimed.job.type)
        timeout = self.policies.timeout(spec, claimed)
        return JobContext(claimed.job, timeout=timeout, worker_id=worker_id, progress_sink=self.progress_sink)

    async def execute(self, claimed: Claimed, ctx: JobContext) -> Outcome:
        """Run the attempt. Never raises, except `CancelledError` when the worker cancels the job."""
        job = claimed.job
        spec = self.registry.get(job.type)
        if spec is None:  # claimed only for registered types; a registry changed under a running worker
            entry = error_entry("LookupError", f"no handler registered for job type {job.type!r}")
            return Outcome(claimed.ref, Kind.RETRY, error=entry, delay=self._delay(None, job))
        deadline = asyncio.timeout(ctx.timeout)
        try:
            async with deadline:
                value = await self._call(spec, claimed, ctx)
            return Outcome(claimed.ref, Kind.COMPLETE, result=encode_result(value))
        except TimeoutError as exc:
            if not deadline.expired():
                return self._failure(spec, job, exc)
            return self.timed_out(claimed, ctx)
        except Retry as exc:
            return Outcome(claimed.ref, Kind.RETRY, error=error_entry("Retry", exc.reason), delay=exc.after)
        except Snooze as exc:
            return Outcome(claimed.ref, Kind.SNOOZE, delay=exc.seconds)
        except PermanentError as exc:
            ctx.logger.warning("failed permanently: %s: %s", type(exc).__name__, exc)
            return Outcome(claimed.ref, Kind.FAIL, error=exception_entry(exc))
        except Cancel as exc:
            return Outcome(claimed.ref, Kind.CANCEL, error=error_entry("Cancel", exc.reason))
        except ChildError as exc:
            return self._child_failure(spec, job, exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit from a handler is a failure of the job, not the worker
            return self._failure(spec, job, exc)

    def timed_out(self, claimed: Claimed, ctx: JobContext) -> Outcome:
        """The outcome of an attempt that ran out of time (retried with the usual backoff)."""
        ctx._signal_cancel()
        message = f"job timed out after {ctx.timeout:g} s"
        ctx.logger.warning("%s", message)
        entry = error_entry("TimeoutError", message)
        spec = self.registry.get(claimed.job.type)
        return Outcome(claimed.ref, Kind.RETRY, error=entry, delay=self._delay(spec, claimed.job))

    async def _call(self, spec: TaskSpec, claimed: Claimed, ctx: JobContext) -> Any:
        job = claimed.job
        if spec.isolation == "process":
            module, qualname = spec.import_path
            ref = claimed.ref
            return await run_in_process(
                module, qualname, job, lambda progress: self.progress_sink(ref, progress)
            )
        if spec.is_async:
            return await spec.handler(job.payload, ctx)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, spec.handler, job.payload, ctx)

    def _delay(self, spec: TaskSpec | None, job: Job) -> float:
        policy = self.policies.backoff(spec, job.queue)
        return backoff_delay(policy, max(job.attempts, 1), random=self.random)

    def _failure(self, spec: TaskSpec, job: Job, exc: BaseException) -> Outcome:
        ref = JobRef.of(job)
        last = job.attempts >= job.max_attempts
        log_failure(job, f"{type(exc).__name__}: {exc}", last=last)
        return Outcome(ref, Kind.RETRY, error=exception_entry(exc), delay=self._delay(spec, job))

    def _child_failure(self, spec: TaskSpec, job: Job, exc: ChildError) -> Outcome:
        ref = JobRef.of(job)
        entry = error_entry(exc.type_name, exc.message, exc.traceback)
        if exc.kind == "retry":
            return Outcome(ref, Kind.RETRY, error=entry, delay=exc.arg)
        if exc.kind == "snooze":
            return Outcome(ref, Kind.SNOOZE, delay=exc.arg)
        if exc.kind == "permanent":
            return Outcome(ref, Kind.FAIL, error=entry)
        if exc.kind == "cancel":
            return Outcome(ref, Kind.CANCEL, error=entry)
        log_failure(job, f"{exc.type_name}: {exc.message}", last=job.attempts >= job.max_attempts)
        return Outcome(ref, Kind.RETRY, error=entry, delay=self._delay(spec, job))


def log_failure(job: Job, message: str, *, last: bool) -> None:
    what = "failed for good (dead-lettered)" if last else "failed, will retry"
    job_logger(job).warning("%s: %s", what, message)
