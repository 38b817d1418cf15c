"""Schedules (list, next runs, pause, resume, run now), alerts (list, acknowledge), rate limiters."""

from __future__ import annotations

import itertools
import logging
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response

from jobkeeper import cron
from jobkeeper.api import cursors, problems
from jobkeeper.dashboard.web import PREFIX, DashboardRoute, Signed, checked_form, redirect, render, url
from jobkeeper.errors import InvalidJobError

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

PAGE_SIZE = 100
NEXT_RUNS = 3


def _next_runs(schedule: dict[str, Any], now: datetime) -> list[datetime]:
    if not schedule["active"]:
        return []
    try:
        return list(
            itertools.islice(cron.fires_after(schedule["cron"], schedule["timezone"], now), NEXT_RUNS)
        )
    except Exception as exc:  # an expression stored before validation tightened: show it, don't fail
        log.info("schedule %s: cannot compute next runs: %s", schedule["id"], exc)
        return []


@router.get("/schedules", name="dashboard_schedules")
async def schedules(
    request: Request, viewer: Signed, cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH)
) -> Response:
    after_name, after_id = cursors.text_and_id(cursor)
    params = {
        "ids": None,
        "tenant_id": viewer.scope,
        "active": None,
        "queue": None,
        "job_type": None,
        "after_name": after_name,
        "after_id": after_id,
        "limit": PAGE_SIZE,
    }
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.rows("api_list_schedules", params)
        now = await tx.now()
    for row in rows:
        row["next_runs"] = _next_runs(row, now)
    next_page = None
    if len(rows) == PAGE_SIZE:
        next_page = url("/schedules", cursor=cursors.encode(rows[-1]["name"], rows[-1]["id"]))
    return render(request, "schedules.html", {"schedules": rows, "next_page": next_page}, viewer=viewer)


@router.post("/schedules/{schedule_id}/{action}")
async def schedule_action(
    request: Request,
    viewer: Signed,
    schedule_id: uuid.UUID,
    action: str = Path(pattern="^(pause|resume|run)$"),
) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    state = viewer.state
    async with state.tenancy.transaction(viewer.principal) as tx:
        found = await tx.rows(
            "api_lock_schedule",
            {"id": schedule_id},
        )
        if not found:
            raise problems.not_found("schedule", schedule_id)
        schedule = found[0]
        if action == "pause":
            await tx.rows("dashboard_pause_schedule", {"id": schedule_id})
            notice = f"schedule {schedule['name']} paused"
        elif action == "resume":
            try:
                next_run = cron.next_fire(schedule["cron"], schedule["timezone"], await tx.now())
            except (InvalidJobError, ValueError) as exc:
                raise problems.conflict(f"the schedule's cron expression cannot run: {exc}") from None
            await tx.rows("dashboard_resume_schedule", {"id": schedule_id, "next_run_at": next_run})
            notice = f"schedule {schedule['name']} resumed; next run {next_run:%Y-%m-%d %H:%M:%S %Z}"
        else:
            (job,) = await state.client.enqueue_many(
                [
                    {
                        "type": schedule["job_type"],
                        "payload": schedule["payload"],
                        "queue": schedule["queue"],
                        "priority": schedule["priority"],
                        "tenant_id": schedule["tenant_id"],
                    }
                ],
                conn=tx.conn,
            )
            await tx.rows("dashboard_record_schedule_run", {"id": schedule_id, "job_id": job.id})
            return redirect(url(f"/jobs/{job.id}"), notice=f"schedule {schedule['name']} run now")
    return redirect(url("/schedules"), notice=notice)


@router.get("/alerts", name="dashboard_alerts")
async def alerts(
    request: Request,
    viewer: Signed,
    show: str = Query("open", pattern="^(open|all)$"),
    cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH),
) -> Response:
    before_created_at, before_id = cursors.time_and_id(cursor)
    params = {
        "ids": None,
        "tenant_id": viewer.scope,
        "acknowledged": False if show == "open" else None,
        "severity": None,
        "queue": None,
        "rule": None,
        "before_created_at": before_created_at,
        "before_id": before_id,
        "limit": PAGE_SIZE,
    }
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.rows("api_list_alerts", params)
    next_page = None
    if len(rows) == PAGE_SIZE:
        next_page = url("/alerts", show=show, cursor=cursors.encode(rows[-1]["created_at"], rows[-1]["id"]))
    return render(
        request, "alerts.html", {"alerts": rows, "show": show, "next_page": next_page}, viewer=viewer
    )


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, viewer: Signed, alert_id: uuid.UUID) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        row = await tx.row("api_acknowledge_alert", {"id": alert_id, "by": viewer.principal.subject})
    if row is None:
        raise problems.not_found("alert", alert_id)
    return redirect(url("/alerts"), notice="alert acknowledged")


@router.get("/limiters", name="dashboard_limiters")
async def limiters(request: Request, viewer: Signed) -> Response:
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.rows("dashboard_limiters", {"tenant_id": viewer.scope})
    return render(request, "limiters.html", {"limiters": rows}, viewer=viewer)


@router.get("/fragments/limiters")
async def limiters_fragment(request: Request, viewer: Signed) -> Response:
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.rows("dashboard_limiters", {"tenant_id": viewer.scope})
    return render(request, "_limiters.html", {"limiters": rows}, viewer=viewer)
