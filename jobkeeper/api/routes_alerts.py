"""Alerts raised by the leader's alert checks: list, show, acknowledge."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from jobkeeper.api import cursors, problems
from jobkeeper.api.access import tenant_filter
from jobkeeper.api.auth import Caller, TenantAdmin
from jobkeeper.api.schemas import AlertOut, AlertPage, NoNul, QueueName
from jobkeeper.api.state import State

PREFIX = "/api/v1/queue"
MAX_PAGE = 500

router = APIRouter(prefix=PREFIX, tags=["alerts"])

_ERRORS = problems.responses(401, 403, 404, 422, 503)


def _params(**overrides: Any) -> dict[str, Any]:
    return {
        "ids": None,
        "tenant_id": None,
        "acknowledged": None,
        "severity": None,
        "queue": None,
        "rule": None,
        "before_created_at": None,
        "before_id": None,
        "limit": 1,
    } | overrides


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
    params = _params(
        tenant_id=tenant_filter(principal, tenant_id),
        acknowledged=acknowledged,
        severity=severity,
        queue=queue,
        rule=rule,
        before_created_at=before_created_at,
        before_id=before_id,
        limit=limit,
    )
    async with state.tenancy.transaction(principal) as tx:
        rows = await tx.rows("api_list_alerts", params)
    next_cursor = cursors.encode(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return AlertPage(items=[AlertOut(**row) for row in rows], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", response_model=AlertOut, responses=_ERRORS, summary="Show an alert")
async def get_alert(alert_id: uuid.UUID, principal: Caller, state: State) -> AlertOut:
    async with state.tenancy.transaction(principal) as tx:
        row = await tx.row("api_list_alerts", _params(ids=[alert_id]))
    if row is None:
        raise problems.not_found("alert", alert_id)
    return AlertOut(**row)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=_ERRORS,
    summary="Acknowledge an alert (admin, venue_admin)",
)
async def acknowledge_alert(alert_id: uuid.UUID, principal: TenantAdmin, state: State) -> AlertOut:
    """Records when and by whom (the token's subject). Acknowledging again keeps the first record."""
    async with state.tenancy.transaction(principal) as tx:
        row = await tx.row("api_acknowledge_alert", {"id": alert_id, "by": principal.subject})
    if row is None:
        raise problems.not_found("alert", alert_id)
    return AlertOut(**row)
