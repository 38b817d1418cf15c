"""Dead letters: list, show, replay one or a filtered set, purge (the store's operations,
`jobkeeper.store.dead_letters`, run inside the caller's tenant-scoped transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from jobkeeper.api import cursors, problems
from jobkeeper.api.access import tenant_filter
from jobkeeper.api.auth import Caller, TenantAdmin
from jobkeeper.api.problems import FieldError
from jobkeeper.api.schemas import (
    DeadLetterOut,
    DeadLetterPage,
    DeadLetterSelection,
    JobOut,
    JobType,
    PurgeRequest,
    PurgeResult,
    QueueName,
    ReplayRequest,
    ReplayResult,
)
from jobkeeper.api.state import State
from jobkeeper.dead_letters import DeadLetterFilter
from jobkeeper.store import dead_letters as store
from jobkeeper.types import Page

PREFIX = "/api/v1/queue"
MAX_PAGE = 1000

router = APIRouter(prefix=PREFIX, tags=["dead letters"])

_ERRORS = problems.responses(400, 401, 403, 404, 409, 422, 503)


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise problems.invalid([FieldError(name, "must include a time zone (e.g. Z)")])


def _filter(
    selection: DeadLetterSelection, tenant: uuid.UUID | None, replayed: bool | None
) -> DeadLetterFilter:
    _aware("body.since", selection.since)
    _aware("body.until", selection.until)
    return DeadLetterFilter(
        ids=selection.ids,
        queue=selection.queue,
        type=selection.type,
        tenant_id=tenant,
        since=selection.since,
        until=selection.until,
        replayed=replayed,
    )


@router.get("/dead-letters", response_model=DeadLetterPage, responses=_ERRORS, summary="List dead letters")
async def list_dead_letters(
    principal: Caller,
    state: State,
    queue: Annotated[QueueName | None, Query()] = None,
    type: Annotated[JobType | None, Query()] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Platform admins only")] = None,
    since: Annotated[datetime | None, Query(description="failed at or after")] = None,
    until: Annotated[datetime | None, Query(description="failed before")] = None,
    replayed: Annotated[bool | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> DeadLetterPage:
    """Newest failure first."""
    _aware("query.since", since)
    _aware("query.until", until)
    before_failed_at, before_id = cursors.time_and_id(cursor)
    where = DeadLetterFilter(
        queue=queue,
        type=type,
        tenant_id=tenant_filter(principal, tenant_id),
        since=since,
        until=until,
        replayed=replayed,
    )
    before = (before_failed_at, before_id) if before_failed_at is not None and before_id is not None else None
    async with state.tenancy.transaction(principal) as tx:
        items = await tx.run(store.list(where, Page(before, limit)))
    next_cursor = cursors.encode(items[-1].failed_at, items[-1].id) if len(items) == limit else None
    return DeadLetterPage(items=[DeadLetterOut.of(d) for d in items], next_cursor=next_cursor)


async def _one(state: State, principal: Caller, dead_letter_id: uuid.UUID) -> DeadLetterOut:
    found = await state.tenancy.found(principal, store.get(dead_letter_id), "dead letter", dead_letter_id)
    return DeadLetterOut.of(found)


@router.get(
    "/dead-letters/{dead_letter_id}",
    response_model=DeadLetterOut,
    responses=_ERRORS,
    summary="Show a dead letter",
)
async def get_dead_letter(dead_letter_id: uuid.UUID, principal: Caller, state: State) -> DeadLetterOut:
    return await _one(state, principal, dead_letter_id)


@router.post(
    "/dead-letters/{dead_letter_id}/replay",
    status_code=201,
    response_model=JobOut,
    responses=_ERRORS,
    summary="Replay one dead letter as a fresh job (admin, venue_admin)",
)
async def replay_dead_letter(dead_letter_id: uuid.UUID, principal: TenantAdmin, state: State) -> JobOut:
    async with state.tenancy.transaction(principal) as tx:
        jobs = await tx.run(store.replay(DeadLetterFilter(ids=[dead_letter_id]), 1))
    if jobs:
        return JobOut.of(jobs[0])
    existing = await _one(state, principal, dead_letter_id)
    raise problems.conflict(
        f"dead letter {dead_letter_id} was already replayed as job {existing.replayed_job_id}"
    )


@router.post(
    "/dead-letters/replay",
    response_model=ReplayResult,
    responses=_ERRORS,
    summary="Replay the dead letters a filter selects (admin, venue_admin)",
)
async def replay_dead_letters(body: ReplayRequest, principal: TenantAdmin, state: State) -> ReplayResult:
    """Oldest failure first, at most `limit`, skipping those already replayed. An empty filter selects
    every dead letter of the caller's tenant."""
    where = _filter(body, tenant_filter(principal, body.tenant_id), None)
    async with state.tenancy.transaction(principal) as tx:
        replayed = await tx.run(store.replay(where, body.limit))
    jobs = [JobOut.of(job) for job in replayed]
    return ReplayResult(replayed=len(jobs), jobs=jobs)


@router.post(
    "/dead-letters/purge",
    response_model=PurgeResult,
    responses=_ERRORS,
    summary="Delete the dead letters a filter selects (admin, venue_admin)",
)
async def purge_dead_letters(body: PurgeRequest, principal: TenantAdmin, state: State) -> PurgeResult:
    """The failed jobs themselves are kept. With no criterion, `all: true` is required."""
    criteria = (body.ids, body.queue, body.type, body.tenant_id, body.since, body.until, body.replayed)
    if not body.all and all(value is None for value in criteria):
        raise problems.invalid(
            [FieldError("body.all", "give a criterion, or set all to true to purge every dead letter")]
        )
    where = _filter(body, tenant_filter(principal, body.tenant_id), body.replayed)
    async with state.tenancy.transaction(principal) as tx:
        purged = await tx.run(store.purge(where))
    return PurgeResult(purged=len(purged))


@router.delete(
    "/dead-letters/{dead_letter_id}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
    summary="Delete one dead letter (admin, venue_admin)",
)
async def delete_dead_letter(dead_letter_id: uuid.UUID, principal: TenantAdmin, state: State) -> Response:
    purging = store.purge(DeadLetterFilter(ids=[dead_letter_id]))
    await state.tenancy.found(principal, purging, "dead letter", dead_letter_id)
    return Response(status_code=204)
