"""Jobs: the filtered list (keyset-paged), a job's detail, retry and cancel, bulk actions on a filter."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Query, Request, Response

from jobkeeper.api import cursors, problems
from jobkeeper.api.tenancy import Tx
from jobkeeper.dashboard.diagnosis import diagnose
from jobkeeper.dashboard.filters import JobFilter
from jobkeeper.dashboard.history import history
from jobkeeper.dashboard.web import Signed, Viewer, checked_form, page_router, redirect, render, url
from jobkeeper.errors import JobFinishedError
from jobkeeper.store import dependencies, jobs, tenants
from jobkeeper.store import queues as queue_ops
from jobkeeper.types import JobStatus, Page

router = page_router()

PAGE_SIZE = 50
PAYLOAD_SCAN = 20_000
"""Jobs a payload filter looks at per page (it has no index): a page costs at most this many rows read."""
MAX_BULK = 10_000
WORKER_MAX_AGE_SECONDS = 60.0
FINAL = ("completed", "failed", "cancelled")
ACTIONABLE = {"retry": ["failed", "cancelled"], "cancel": ["pending", "waiting", "processing"]}


async def _choices(tx: Tx, viewer: Viewer) -> dict[str, Any]:
    """Queues (and, for platform admins, tenants) for the filter form's drop-downs."""
    queues = await tx.run(queue_ops.list_queues())  # as this request's role sees them
    return {
        "queues": [queue.name for queue in queues],
        "tenants": await tx.run(tenants.list_all()) if viewer.principal.is_platform_admin else [],
        "statuses": [s.value for s in JobStatus],
    }


@router.get("/jobs", name="dashboard_jobs")
async def list_jobs(
    request: Request, viewer: Signed, cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH)
) -> Response:
    where = JobFilter.read(request.query_params.multi_items())
    selected = where.select(viewer)
    before_created_at, before_id = cursors.time_and_id(cursor)
    before = (
        (before_created_at, before_id) if before_created_at is not None and before_id is not None else None
    )
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        page = await tx.run(jobs.list_page(selected, Page(before, PAGE_SIZE), scan_limit=PAYLOAD_SCAN))
        choices = await _choices(tx, viewer)
    next_page = searched = None
    if page.next_before is not None:
        next_page = url("/jobs", [*where.pairs(), ("cursor", cursors.encode(*page.next_before))])
        if len(page.jobs) < PAGE_SIZE:
            # The payload filter looked at its whole window: older jobs may match too; go on from its edge.
            searched = page.next_before[0]
    return render(
        request,
        "jobs.html",
        {
            "jobs": page.jobs,
            "where": where,
            "next_page": next_page,
            "searched_to": searched,
            "payload_scan": PAYLOAD_SCAN,
            "first_page": url("/jobs", where.pairs()) if cursor else None,
            "retry_all": url("/jobs/bulk", [*where.pairs(), ("action", "retry")]),
            "cancel_all": url("/jobs/bulk", [*where.pairs(), ("action", "cancel")]),
            **choices,
        },
        viewer=viewer,
    )


def _action(raw: str | None) -> str:
    if raw not in ACTIONABLE:
        raise problems.invalid([problems.FieldError("action", "must be retry or cancel")])
    return raw


@router.get("/jobs/bulk", name="dashboard_bulk_confirm")
async def bulk_confirm(request: Request, viewer: Signed) -> Response:
    viewer.require_tenant_admin()
    pairs = request.query_params.multi_items()
    action = _action(request.query_params.get("action"))
    where = JobFilter.read(pairs)
    selected = where.select(viewer)
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        total = await tx.run(jobs.count_actionable(selected, ACTIONABLE[action], MAX_BULK))
    # counted up to MAX_BULK + 1: a click acts on MAX_BULK at most
    counted = f"more than {MAX_BULK:,}" if total > MAX_BULK else str(total)
    return render(
        request,
        "confirm.html",
        {
            "title": f"{action.title()} {counted} job{'s' if total != 1 else ''}?",
            "message": (
                f"This will {action} every {' or '.join(ACTIONABLE[action])} job the filter selects"
                + (f" (at most {MAX_BULK:,} at a time)" if total > MAX_BULK else "")
                + "."
            ),
            "count": counted if total > MAX_BULK else total,
            "action_url": url("/jobs/bulk"),
            "fields": [*where.pairs(), ("action", action)],
            "button": f"{action.title()} {min(total, MAX_BULK)} jobs",
            "back": url("/jobs", where.pairs()),
            "danger": action == "cancel",
        },
        viewer=viewer,
    )


@router.post("/jobs/bulk")
async def bulk(request: Request, viewer: Signed) -> Response:
    form = await checked_form(request, viewer)
    viewer.require_tenant_admin()
    action = _action(form.get("action"))
    where = JobFilter.read(form.pairs)
    selected = where.select(viewer)
    bulk_op = jobs.retry_matching if action == "retry" else jobs.cancel_matching  # cancel settles dependents
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        count = await tx.run(bulk_op(selected, MAX_BULK))
    verb = "retried" if action == "retry" else "cancelled"
    return redirect(url("/jobs", where.pairs()), notice=f"{verb} {count} jobs")


async def _job(
    viewer: Viewer, job_id: uuid.UUID, *, related: bool = False
) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
    """The job, its diagnosis, and (with `related`) its parents and children."""
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        job = await tx.run(jobs.detail(job_id))
        diagnosis = await tx.run(jobs.diagnose(job_id, WORKER_MAX_AGE_SECONDS))
        relations = await tx.run(dependencies.related(job_id)) if related else []
    if job is None:
        raise problems.not_found("job", job_id)
    return job, diagnosis, relations


def _context(
    job: dict[str, Any], diagnosis: dict[str, Any] | None, related: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    past = history(job)
    return {
        "parents": [row for row in related or [] if row["relation"] == "parent"],
        "children": [row for row in related or [] if row["relation"] == "child"],
        "job": job,
        "final": job["status"] in FINAL,
        "timeline": past.events,
        "attempts": past.attempts,
        "run": past.run,
        "total_attempts": past.total_attempts,
        "reasons": diagnose(diagnosis) if diagnosis is not None else [],
    }


@router.get("/jobs/{job_id}", name="dashboard_job")
async def job_detail(request: Request, viewer: Signed, job_id: uuid.UUID) -> Response:
    job, diagnosis, related = await _job(viewer, job_id, related=True)
    return render(request, "job.html", _context(job, diagnosis, related), viewer=viewer)


@router.get("/fragments/jobs/{job_id}")
async def job_fragment(request: Request, viewer: Signed, job_id: uuid.UUID) -> Response:
    job, diagnosis, _ = await _job(viewer, job_id)
    return render(request, "_job_live.html", _context(job, diagnosis), viewer=viewer)


@router.post("/jobs/{job_id}/retry")
async def retry(request: Request, viewer: Signed, job_id: uuid.UUID) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    retried = await viewer.state.tenancy.found(viewer.principal, jobs.retry(job_id), "job", job_id)
    if not retried.changed:
        raise problems.conflict(
            f"job {job_id} is {retried.job.status.value}; only failed or cancelled jobs can be retried"
        )
    return redirect(url(f"/jobs/{job_id}"), notice="retried: the job is pending again")


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, viewer: Signed, job_id: uuid.UUID) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    try:
        async with viewer.state.tenancy.transaction(viewer.principal) as tx:
            job = await tx.run(jobs.cancel(job_id))
    except JobFinishedError as exc:
        raise problems.conflict(str(exc)) from None
    if job is None:
        raise problems.not_found("job", job_id)
    notice = (
        "cancel requested: its worker will stop it" if job.status is JobStatus.PROCESSING else "cancelled"
    )
    return redirect(url(f"/jobs/{job_id}"), notice=notice)
