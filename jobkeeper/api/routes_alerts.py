"""Alerts raised by the leader's alert checks: list, show, acknowledge."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from jobkeeper.api import cursors, problems
from jobkeeper.api.access import tenant_filter
from jobkeeper.api.auth import Caller, TenantAdmin
from jobkeeper.api.schemas import AlertOut, AlertPage, NoNul, QueueName
from jobkeeper.api.state import State
from jobkeeper.store import alerts
from jobkeeper.types import Alert

PREFIX = "/api/v1/queue"
MAX_PAGE = 500

router = APIRouter(prefix=PREFIX, tags=["alerts"])

_ERRORS = problems.responses(401, 403, 404, 422, 503)


def _out(alert: Alert) -> AlertOut:
    return AlertOut(**dataclasses.asdict(alert))


@router.get("/alerts", response_model=AlertPage, responses=_ERRORS, summary="List alerts")
async def list_alerts(
    principal: Caller,
    state: State,
    acknowledged: Annotated[bool | None, Query()] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    queue: Annotated[QueueName | None, Query()] = None,
    rule: Annotated[str | None, Query(min_length=1, max_length=100), NoNul] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Platform admins only")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> AlertPage:
    """Newest first. Tenants see their own tenant's alerts; platform-wide alerts only platform admins."""
    before_created_at, before_id = cursors.time_and_id(cursor)
    listing = alerts.list(
        tenant_id=tenant_filter(principal, tenant_id),
        acknowledged=acknowledged,
        severity=severity,
        queue=queue,
        rule=rule,
        before=(before_created_at, before_id)
        if before_created_at is not None and before_id is not None
        else None,
        limit=limit,
    )
    async with state.tenancy.transaction(principal) as tx:
        found = await tx.run(listing)
    next_cursor = cursors.encode(found[-1].created_at, found[-1].id) if len(found) == limit else None
    return AlertPage(items=[_out(alert) for alert in found], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", response_model=AlertOut, responses=_ERRORS, summary="Show an alert")
async def get_alert(alert_id: uuid.UUID, principal: Caller, state: State) -> AlertOut:
    return _out(await state.tenancy.found(principal, alerts.get(alert_id), "alert", alert_id))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=_ERRORS,
    summary="Acknowledge an alert (admin, venue_admin)",
)
async def acknowledge_alert(alert_id: uuid.UUID, principal: TenantAdmin, state: State) -> AlertOut:
    """Records when and by whom (the token's subject). Acknowledging again keeps the first record."""
    acknowledging = alerts.acknowledge(alert_id, by=principal.subject)
    return _out(await state.tenancy.found(principal, acknowledging, "alert", alert_id))
