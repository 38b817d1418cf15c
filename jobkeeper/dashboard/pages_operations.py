"""Schedules (list, next runs, pause, resume, run now), alerts (list, acknowledge), rate limiters."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import uuid
from datetime import datetime

from fastapi import Path, Query, Request, Response

from jobkeeper import cron
from jobkeeper.api import cursors, problems
from jobkeeper.dashboard.web import Signed, checked_form, page_router, redirect, render, url
from jobkeeper.errors import InvalidJobError
from jobkeeper.store import alerts as alert_ops
from jobkeeper.store import limiters as limiter_ops
from jobkeeper.store import schedules as schedule_ops
from jobkeeper.types import Schedule

log = logging.getLogger(__name__)

router = page_router()

PAGE_SIZE = 100
NEXT_RUNS = 3


def _next_runs(schedule: Schedule, now: datetime) -> list[datetime]:
    if not schedule.active:
        return []
    try:
        return list(itertools.islice(cron.fires_after(schedule.cron, schedule.timezone, now), NEXT_RUNS))
    except Exception as exc:  # an expression stored before validation tightened: show it, don't fail
        log.info("schedule %s: cannot compute next runs: %s", schedule.id, exc)
        return []


@router.get("/schedules", name="dashboard_schedules")
async def schedules(
    request: Request, viewer: Signed, cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH)
) -> Response:
    after_name, after_id = cursors.text_and_id(cursor)
    listing = schedule_ops.list(
        tenant_id=viewer.scope,
        after=(after_name, after_id) if after_name is not None and after_id is not None else None,
        limit=PAGE_SIZE,
    )
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        found = await tx.run(listing)
        now = await tx.now()
    rows = [dataclasses.asdict(s) | {"next_runs": _next_runs(s, now)} for s in found]
    next_page = None
    if len(found) == PAGE_SIZE:
        next_page = url("/schedules", cursor=cursors.encode(found[-1].name, found[-1].id))
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
    if action != "run":
        try:
            async with state.tenancy.transaction(viewer.principal) as tx:
                changed = await tx.run(schedule_ops.set_active(schedule_id, action == "resume"))
        except InvalidJobError as exc:  # resuming an expression that can no longer fire
            raise problems.conflict(f"the schedule's cron expression cannot run: {exc}") from None
        if changed is None:
            raise problems.not_found("schedule", schedule_id)
        if action == "pause" or changed.next_run_at is None:
            notice = f"schedule {changed.name} paused"
        else:
            notice = f"schedule {changed.name} resumed; next run {changed.next_run_at:%Y-%m-%d %H:%M:%S %Z}"
        return redirect(url("/schedules"), notice=notice)
    async with state.tenancy.transaction(viewer.principal) as tx:
        schedule = await tx.run(schedule_ops.lock(schedule_id))
        if schedule is None:
            raise problems.not_found("schedule", schedule_id)
        try:
            (job,) = await state.client.enqueue_many(
                [
                    {
                        "type": schedule.job_type,
                        "payload": schedule.payload,
                        "queue": schedule.queue,
                        "priority": schedule.priority,
                        "tenant_id": schedule.tenant_id,
                    }
                ],
                conn=tx.conn,
            )
        except InvalidJobError as exc:
            # The dashboard's error page, not the API's JSON problem: the job this schedule makes is
            # refused (a type or payload that changed since the schedule was made).
            raise problems.invalid([], f"schedule {schedule.name} cannot run now: {exc}") from None
        await tx.run(schedule_ops.record_run(schedule_id, job.id))
    return redirect(url(f"/jobs/{job.id}"), notice=f"schedule {schedule.name} run now")


@router.get("/alerts", name="dashboard_alerts")
async def alerts(
    request: Request,
    viewer: Signed,
    show: str = Query("open", pattern="^(open|all)$"),
    cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH),
) -> Response:
    before_created_at, before_id = cursors.time_and_id(cursor)
    listing = alert_ops.list(
        tenant_id=viewer.scope,
        acknowledged=False if show == "open" else None,
        before=(before_created_at, before_id)
        if before_created_at is not None and before_id is not None
        else None,
        limit=PAGE_SIZE,
    )
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        found = await tx.run(listing)
    next_page = None
    if len(found) == PAGE_SIZE:
        next_page = url("/alerts", show=show, cursor=cursors.encode(found[-1].created_at, found[-1].id))
    return render(
        request, "alerts.html", {"alerts": found, "show": show, "next_page": next_page}, viewer=viewer
    )


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, viewer: Signed, alert_id: uuid.UUID) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    acknowledging = alert_ops.acknowledge(alert_id, by=viewer.principal.subject)
    await viewer.state.tenancy.found(viewer.principal, acknowledging, "alert", alert_id)
    return redirect(url("/alerts"), notice="alert acknowledged")


@router.get("/limiters", name="dashboard_limiters")
async def limiters(request: Request, viewer: Signed) -> Response:
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.run(limiter_ops.list_waiting(viewer.scope))
    return render(request, "limiters.html", {"limiters": rows}, viewer=viewer)


@router.get("/fragments/limiters")
async def limiters_fragment(request: Request, viewer: Signed) -> Response:
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.run(limiter_ops.list_waiting(viewer.scope))
    return render(request, "_limiters.html", {"limiters": rows}, viewer=viewer)
