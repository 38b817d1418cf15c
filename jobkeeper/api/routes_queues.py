"""Queues: list, statistics (cached briefly), pause, resume, clean; the statistics cache itself."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from jobkeeper.api import problems
from jobkeeper.api.access import tenant_filter
from jobkeeper.api.auth import Caller, PlatformAdmin
from jobkeeper.api.schemas import (
    QUEUE_PATTERN,
    CacheFlushed,
    CacheStats,
    CleanResult,
    JobTypeDeclaration,
    JobTypeList,
    JobTypeOut,
    QueueCounts,
    QueueList,
    QueueOut,
    QueueStats,
)
from jobkeeper.api.state import ApiState, State
from jobkeeper.enqueue import check_declaration
from jobkeeper.errors import InvalidJobError
from jobkeeper.payloads import BUILTIN_TYPES
from jobkeeper.store import queues as store
from jobkeeper.types import JobStatus, JobType, Queue

PREFIX = "/api/v1/queue"
MAX_CLEAN = 100_000
Cleanable = Literal["completed", "failed", "cancelled"]
"""The finished statuses, the only ones `clean` deletes (and the spec lists)."""

router = APIRouter(prefix=PREFIX, tags=["queues"])

QueuePath = Annotated[str, Path(pattern=QUEUE_PATTERN, description="A queue name, e.g. `money`")]

_ERRORS = problems.responses(400, 401, 403, 404, 422, 503)


def _queue_out(queue: Queue) -> QueueOut:
    return QueueOut(
        name=queue.name,
        tenant_id=queue.tenant_id,
        tier=queue.tier,
        max_attempts=queue.max_attempts,
        backoff=queue.backoff,
        backoff_base_seconds=queue.backoff_base_seconds,
        backoff_max_seconds=queue.backoff_max_seconds,
        timeout_seconds=queue.timeout_seconds,
        default_priority=queue.default_priority,
        paused=queue.paused,
    )


@router.get("/queues", response_model=QueueList, responses=_ERRORS, summary="List queues")
async def list_queues(principal: Caller, state: State) -> QueueList:
    """Shared platform queues and the caller's tenant's own (platform admins: all)."""
    async with state.tenancy.transaction(principal) as tx:
        queues = await tx.run(store.list_queues())
    return QueueList(items=[_queue_out(queue) for queue in queues])


@router.get("/queues/{queue}/stats", response_model=QueueStats, responses=_ERRORS, summary="Queue statistics")
async def queue_stats(
    queue: QueuePath,
    principal: Caller,
    state: State,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Platform admins only")] = None,
) -> QueueStats:
    """Counts of the caller's jobs in the queue by state (platform admins: every tenant's, or one
    tenant's), the oldest due job's wait and the dead letters not yet replayed. Served from a cache of
    `JOBKEEPER_API_STATS_CACHE_TTL` seconds."""
    scope = tenant_filter(principal, tenant_id)
    key = (scope, queue)
    cached = state.stats_cache.get(key)
    if cached is not None:
        return cached.model_copy(update={"cached": True})
    async with state.tenancy.transaction(principal) as tx:
        found = await tx.run(store.stats(scope, queue))
    if not found:
        raise problems.not_found("queue", queue)
    row = found[0]
    stats = QueueStats(
        queue=row.name,
        tier=row.tier,
        paused=row.paused,
        tenant_id=scope,
        counts=QueueCounts(
            waiting=row.waiting,
            scheduled=row.scheduled,
            processing=row.processing,
            completed=row.completed,
            failed=row.failed,
            cancelled=row.cancelled,
            awaiting_dependencies=row.awaiting_dependencies,
        ),
        oldest_waiting_seconds=row.oldest_waiting_seconds,
        dead_letters=row.dead_letters,
        measured_at=row.measured_at,
        cached=False,
    )
    state.stats_cache.put(key, stats)
    return stats


async def _set_paused(state: ApiState, principal: PlatformAdmin, queue: str, paused: bool) -> QueueOut:
    changed = await state.tenancy.found(principal, store.set_paused(queue, paused), "queue", queue)
    state.stats_cache.flush()
    return _queue_out(changed)


@router.post(
    "/queues/{queue}/pause",
    response_model=QueueOut,
    responses=_ERRORS,
    summary="Pause a queue: workers stop claiming from it (admin)",
)
async def pause_queue(queue: QueuePath, principal: PlatformAdmin, state: State) -> QueueOut:
    """Running jobs finish; new and waiting jobs stay pending until the queue is resumed. Enqueueing into
    a paused queue still works."""
    return await _set_paused(state, principal, queue, True)


@router.post(
    "/queues/{queue}/resume", response_model=QueueOut, responses=_ERRORS, summary="Resume a queue (admin)"
)
async def resume_queue(queue: QueuePath, principal: PlatformAdmin, state: State) -> QueueOut:
    return await _set_paused(state, principal, queue, False)


@router.delete(
    "/queues/{queue}/clean",
    response_model=CleanResult,
    responses=_ERRORS,
    summary="Delete finished jobs of a queue (admin)",
)
async def clean_queue(
    queue: QueuePath,
    principal: PlatformAdmin,
    state: State,
    status: Annotated[
        list[Cleanable] | None, Query(description="completed (default), failed, cancelled")
    ] = None,
    grace: Annotated[float, Query(ge=0, le=10 * 365 * 86400, description="Seconds since finishing")] = 0.0,
    limit: Annotated[int, Query(ge=1, le=MAX_CLEAN)] = 10_000,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Only this tenant's jobs")] = None,
) -> CleanResult:
    """Deletes at most `limit` jobs per call. Jobs whose idempotency key is still alive are kept until it
    expires (deleting them would let a duplicate payment through); dead letters are kept."""
    catalog = await state.client.catalog()
    if queue not in catalog.queues and queue not in (await state.client.catalog(refresh=True)).queues:
        raise problems.not_found("queue", queue)
    values = sorted(set(status or [JobStatus.COMPLETED.value]))
    async with state.tenancy.transaction(principal) as tx:
        deleted = await tx.run(store.clean(queue, values, grace=grace, tenant_id=tenant_id, limit=limit))
    state.stats_cache.flush()
    return CleanResult(queue=queue, deleted=deleted, statuses=values, more=deleted == limit)


_KNOWN: dict[int | str, dict[str, Any]] = {200: {"model": JobTypeOut, "description": "A known type"}}


def _job_type_out(job_type: JobType) -> JobTypeOut:
    return JobTypeOut(
        name=job_type.name,
        queue=job_type.queue,
        max_attempts=job_type.max_attempts,
        priority=job_type.priority,
        builtin=job_type.name in BUILTIN_TYPES,
    )


@router.get("/types", response_model=JobTypeList, responses=_ERRORS, summary="List job types (admin)")
async def list_job_types(principal: PlatformAdmin, state: State) -> JobTypeList:
    """The job types enqueue accepts: built in, registered by a worker that has started, or declared.
    Platform admins only: a type a worker registered may be one tenant's own."""
    async with state.tenancy.transaction(principal) as tx:
        job_types = await tx.run(store.list_job_types())
    return JobTypeList(items=[_job_type_out(job_type) for job_type in job_types])


@router.post(
    "/types",
    status_code=201,
    response_model=JobTypeOut,
    responses=_KNOWN | _ERRORS,
    summary="Declare a job type (admin)",
)
async def declare_job_type(
    body: JobTypeDeclaration, principal: PlatformAdmin, state: State, response: Response
) -> JobTypeOut:
    """Make a job type known, so that its jobs can be enqueued (and scheduled) before a worker handling
    it has started. Declaring a known type again with `queue` changes its default queue."""
    catalog = await state.client.catalog(refresh=True)
    try:
        check_declaration(body.name, body.queue, catalog)
    except InvalidJobError as exc:
        raise problems.invalid([problems.FieldError(f"body.{exc.field}", exc.reason)]) from None
    async with state.tenancy.transaction(principal) as tx:
        declared = await tx.run(
            store.declare_job_type(body.name, body.queue, default_queue=state.settings.default_queue)
        )
    await state.client.catalog(refresh=True)
    if not declared.created:
        response.status_code = 200
    return _job_type_out(declared.job_type)


@router.get(
    "/cache/stats",
    response_model=CacheStats,
    responses=_ERRORS,
    summary="Statistics cache: size and hits (admin)",
)
async def cache_stats(principal: PlatformAdmin, state: State) -> CacheStats:
    """The cache of queue statistics of the API process that answers."""
    cache = state.stats_cache
    return CacheStats(
        name=cache.name,
        entries=len(cache),
        max_entries=cache.max_entries,
        ttl_seconds=cache.ttl_seconds,
        hits=cache.hits,
        misses=cache.misses,
    )


@router.delete(
    "/cache/flush",
    response_model=CacheFlushed,
    responses=_ERRORS,
    summary="Empty the statistics cache (admin)",
)
async def cache_flush(principal: PlatformAdmin, state: State) -> CacheFlushed:
    """Empties the cache of the API process that answers; the next statistics are read fresh."""
    return CacheFlushed(name=state.stats_cache.name, flushed=state.stats_cache.flush())
