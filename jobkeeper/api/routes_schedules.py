"""Schedules (cron): create, list, show, update, pause, resume, delete. The leader's scheduler fires them
(jobkeeper.maintenance.scheduler); the API validates the expression and sets the next run."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from jobkeeper import cron
from jobkeeper.api import cursors, problems
from jobkeeper.api.access import acting_tenant, may_enqueue, queue_visible, tenant_filter
from jobkeeper.api.auth import Caller, Principal, TenantAdmin
from jobkeeper.api.payloads import unknown_type, validate_payload
from jobkeeper.api.problems import FieldError
from jobkeeper.api.schemas import (
    JobType,
    QueueName,
    ScheduleOut,
    SchedulePage,
    ScheduleRequest,
    ScheduleUpdate,
)
from jobkeeper.api.state import ApiState, State
from jobkeeper.catalog import Catalog
from jobkeeper.enqueue import encode_payload
from jobkeeper.errors import ConflictError, InvalidJobError, PayloadTooLargeError
from jobkeeper.idempotency import MONEY_TYPES
from jobkeeper.store import schedules
from jobkeeper.types import Schedule, Tier

log = logging.getLogger(__name__)

PREFIX = "/api/v1/queue"
MAX_PAGE = 500

router = APIRouter(prefix=PREFIX, tags=["schedules"])

_ERRORS = problems.responses(400, 401, 403, 404, 409, 413, 422, 503)


def _next_run(expression: str, timezone: str, now: datetime, min_interval: float = 0.0) -> datetime:
    """Validate the expression and zone (422 naming the field), and that its slots are at least
    `min_interval` seconds apart; return the first slot after `now`."""
    try:
        cron.validate(expression, timezone)
        cron.check_interval(expression, timezone, now, min_interval)
    except InvalidJobError as exc:
        raise problems.invalid([FieldError(f"body.{exc.field}", exc.reason)]) from None
    try:
        return cron.next_fire(expression, timezone, now)
    except Exception as exc:
        log.info("cron expression %r never fires: %s", expression, exc)
        raise problems.invalid([FieldError("body.cron", f"never fires: {expression!r}")]) from None


def _stale(state: ApiState, catalog: Catalog, job_type: str, queue_name: str | None) -> bool:
    """Whether the cached catalog may not know the schedule's type or queue yet."""
    return (queue_name is not None and queue_name not in catalog.queues) or (
        not state.settings.allow_unknown_types and job_type not in catalog.job_types
    )


def _resolve_queue(
    state: ApiState,
    principal: Principal,
    catalog: Catalog,
    job_type: str,
    queue_name: str | None,
    tenant: uuid.UUID,
) -> tuple[str, list[FieldError]]:
    """The schedule's queue, and what is wrong with its type and queue."""
    allow_unknown = state.settings.allow_unknown_types
    type_error = unknown_type(
        job_type, catalog, allow_unknown, platform=principal.is_platform_admin, prefix=("body",)
    )
    registered = catalog.job_types.get(job_type)
    name = queue_name or (registered.queue if registered else state.settings.default_queue)
    queue = catalog.queues.get(name)
    errors = [type_error] if type_error else []
    if queue is None or not queue_visible(queue, tenant):
        return name, [*errors, FieldError("body.queue", f"unknown queue {name!r}")]
    if errors:
        return name, errors
    if job_type in MONEY_TYPES and queue.tier is not Tier.DURABLE:
        return name, [FieldError("body.queue", f"{job_type} moves money and needs a durable queue")]
    return name, []


def _payload_text(state: ApiState, data: dict[str, Any]) -> str:
    try:
        return encode_payload(data, state.settings.max_payload_bytes)
    except PayloadTooLargeError as exc:
        raise problems.payload_too_large(exc.reason, "body.data") from None
    except InvalidJobError as exc:
        raise problems.invalid([FieldError("body.data", exc.reason)]) from None


async def _validated(
    state: ApiState, principal: Principal, values: dict[str, Any], tenant: uuid.UUID
) -> dict[str, Any]:
    """The schedule's column values, checked: payload for its type, queue for the tenant."""
    catalog = await state.client.catalog()
    if _stale(state, catalog, values["job_type"], values["queue"]):
        catalog = await state.client.catalog(refresh=True)
    return _validated_in(state, principal, catalog, values, tenant)


def _validated_in(
    state: ApiState, principal: Principal, catalog: Catalog, values: dict[str, Any], tenant: uuid.UUID
) -> dict[str, Any]:
    errors = validate_payload(values["job_type"], values["data"], ("body", "data"))
    if not errors:
        may_enqueue(principal, values["job_type"], values["data"], tenant)
    queue, queue_errors = _resolve_queue(
        state, principal, catalog, values["job_type"], values["queue"], tenant
    )
    errors.extend(queue_errors)
    if errors:
        raise problems.invalid(errors)
    columns = {k: v for k, v in values.items() if k != "data"}
    return columns | {"queue": queue, "payload": _payload_text(state, values["data"])}


def _values(schedule: Schedule) -> dict[str, Any]:
    """A schedule's writable values, its payload as `data` (as a request gives them)."""
    return {
        "tenant_id": schedule.tenant_id,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "queue": schedule.queue,
        "job_type": schedule.job_type,
        "data": schedule.payload,
        "priority": schedule.priority,
        "active": schedule.active,
        "missed_policy": schedule.missed_policy,
        "catch_up_window_seconds": schedule.catch_up_window_seconds,
        "overlap_policy": schedule.overlap_policy,
    }


def _min_interval(state: ApiState, principal: Principal) -> float:
    # Platform admins are trusted with any cadence; a tenant's own admins are not (issue 15 #1).
    return 0.0 if principal.is_platform_admin else state.settings.schedule_min_interval


def _out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut.of(dataclasses.asdict(schedule))


def _name_taken(name: str) -> problems.Problem:
    return problems.conflict(f"a schedule named {name!r} already exists")


@router.post(
    "/schedules",
    status_code=201,
    response_model=ScheduleOut,
    responses=_ERRORS,
    summary="Create a schedule (admin, venue_admin)",
)
async def create_schedule(
    body: ScheduleRequest, principal: TenantAdmin, state: State, response: Response
) -> ScheduleOut:
    tenant = acting_tenant(principal, body.tenant_id)
    values = await _validated(
        state,
        principal,
        {
            "tenant_id": tenant,
            "name": body.name,
            "cron": body.cron,
            "timezone": body.timezone,
            "queue": body.queue,
            "job_type": body.type,
            "data": body.data,
            "priority": body.priority,
            "active": body.active,
            "missed_policy": body.missed_policy,
            "catch_up_window_seconds": body.catch_up_window_seconds,
            "overlap_policy": body.overlap_policy,
        },
        tenant,
    )
    cap = state.settings.schedules_per_tenant
    try:
        async with state.tenancy.transaction(principal) as tx:
            next_run = _next_run(body.cron, body.timezone, await tx.now(), _min_interval(state, principal))
            created = await tx.run(
                schedules.create(
                    values | {"next_run_at": next_run if body.active else None}, max_schedules=cap
                )
            )
            if created is None:
                raise problems.conflict(
                    f"tenant {tenant} has {cap} schedules, the most allowed "
                    "(JOBKEEPER_SCHEDULES_PER_TENANT); delete one first"
                )
    except ConflictError:
        raise _name_taken(body.name) from None
    response.headers["Location"] = f"{PREFIX}/schedules/{created.id}"
    return _out(created)


@router.get("/schedules", response_model=SchedulePage, responses=_ERRORS, summary="List schedules")
async def list_schedules(
    principal: Caller,
    state: State,
    active: Annotated[bool | None, Query()] = None,
    queue: Annotated[QueueName | None, Query()] = None,
    type: Annotated[JobType | None, Query()] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Platform admins only")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> SchedulePage:
    """By name."""
    after_name, after_id = cursors.text_and_id(cursor)
    listing = schedules.list(
        tenant_id=tenant_filter(principal, tenant_id),
        active=active,
        queue=queue,
        job_type=type,
        after=(after_name, after_id) if after_name is not None and after_id is not None else None,
        limit=limit,
    )
    async with state.tenancy.transaction(principal) as tx:
        found = await tx.run(listing)
    next_cursor = cursors.encode(found[-1].name, found[-1].id) if len(found) == limit else None
    return SchedulePage(items=[_out(schedule) for schedule in found], next_cursor=next_cursor)


@router.get(
    "/schedules/{schedule_id}", response_model=ScheduleOut, responses=_ERRORS, summary="Show a schedule"
)
async def get_schedule(schedule_id: uuid.UUID, principal: Caller, state: State) -> ScheduleOut:
    return _out(await state.tenancy.found(principal, schedules.get(schedule_id), "schedule", schedule_id))


async def _update(
    state: ApiState, principal: Principal, schedule_id: uuid.UUID, changes: dict[str, Any]
) -> ScheduleOut:
    """Apply `changes` under the row lock: validate the merged schedule, then recompute the next run when
    the timing changed or the schedule was resumed (a paused schedule has no next run)."""
    try:
        async with state.tenancy.transaction(principal) as tx:
            current = await tx.run(schedules.lock(schedule_id))
            if current is None:
                raise problems.not_found("schedule", schedule_id)
            merged = _values(current) | changes
            if "job_type" in changes and "queue" not in changes:
                merged["queue"] = None  # the new type's home queue
            values = await _validated(state, principal, merged, current.tenant_id)
            retimed = any(key in changes for key in ("cron", "timezone")) or (
                merged["active"] and not current.active
            )
            next_run = current.next_run_at
            if not merged["active"]:
                next_run = None
            elif retimed or next_run is None:
                # Only a new cadence is held to the minimum interval: renaming or pausing a schedule a
                # platform admin made faster stays possible for its tenant.
                minimum = (
                    _min_interval(state, principal) if "cron" in changes or "timezone" in changes else 0.0
                )
                next_run = _next_run(merged["cron"], merged["timezone"], await tx.now(), minimum)
            updated = await tx.run(schedules.update(schedule_id, values | {"next_run_at": next_run}))
    except ConflictError:
        raise _name_taken(merged["name"]) from None
    assert updated is not None
    return _out(updated)


class _Stale(Exception):
    """The cached catalog may not know the locked schedule's type or queue: refresh it and try again."""


async def _set_active(
    state: ApiState, principal: Principal, schedule_id: uuid.UUID, active: bool
) -> ScheduleOut:
    """Pause or resume (`schedules.set_active`, the meaning the dashboard and the CLI share), once the
    schedule passes the checks of an update: a caller may pause or resume only what it may schedule."""
    catalog = await state.client.catalog()
    for refreshed in (False, True):

        def check(current: Schedule, catalog: Catalog = catalog, refreshed: bool = refreshed) -> None:
            if not refreshed and _stale(state, catalog, current.job_type, current.queue):
                raise _Stale
            _validated_in(state, principal, catalog, _values(current), current.tenant_id)

        try:
            async with state.tenancy.transaction(principal) as tx:
                changed = await tx.run(schedules.set_active(schedule_id, active, check=check))
        except _Stale:
            catalog = await state.client.catalog(refresh=True)
            continue
        except InvalidJobError as exc:  # an expression that can no longer fire
            raise problems.invalid([FieldError(f"body.{exc.field}", exc.reason)]) from None
        if changed is None:
            raise problems.not_found("schedule", schedule_id)
        return _out(changed)
    raise AssertionError("unreachable: the second try does not raise _Stale")


@router.patch(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    responses=_ERRORS,
    summary="Change a schedule (admin, venue_admin)",
)
async def update_schedule(
    schedule_id: uuid.UUID, body: ScheduleUpdate, principal: TenantAdmin, state: State
) -> ScheduleOut:
    """Only the fields given change. A new cron or time zone moves the next run."""
    changes = body.model_dump(exclude_unset=True)
    nulls = [name for name, value in changes.items() if value is None and name != "priority"]
    if nulls:
        raise problems.invalid([FieldError(f"body.{name}", "may not be null") for name in nulls])
    if "type" in changes:
        changes["job_type"] = changes.pop("type")
    return await _update(state, principal, schedule_id, changes)


@router.post(
    "/schedules/{schedule_id}/pause",
    response_model=ScheduleOut,
    responses=_ERRORS,
    summary="Pause a schedule (admin, venue_admin)",
)
async def pause_schedule(schedule_id: uuid.UUID, principal: TenantAdmin, state: State) -> ScheduleOut:
    return await _set_active(state, principal, schedule_id, False)


@router.post(
    "/schedules/{schedule_id}/resume",
    response_model=ScheduleOut,
    responses=_ERRORS,
    summary="Resume a schedule from its next slot (admin, venue_admin)",
)
async def resume_schedule(schedule_id: uuid.UUID, principal: TenantAdmin, state: State) -> ScheduleOut:
    """Slots that passed while paused are not run."""
    return await _set_active(state, principal, schedule_id, True)


@router.delete(
    "/schedules/{schedule_id}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
    summary="Delete a schedule (admin, venue_admin)",
)
async def delete_schedule(schedule_id: uuid.UUID, principal: TenantAdmin, state: State) -> Response:
    await state.tenancy.found(principal, schedules.delete(schedule_id), "schedule", schedule_id)
    return Response(status_code=204)
