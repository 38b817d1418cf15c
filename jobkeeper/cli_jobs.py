"""`jobkeeper jobs list|show|retry|cancel|wait`: one job or many, through the same named SQL as the API
and the dashboard. Exit statuses as in `jobkeeper.cli_common`; `jobs wait` exits with the job's fate."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from jobkeeper.cli_common import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    JSON_OPTION,
    TENANT_FILTER,
    Duration,
    Failed,
    Instant,
    Session,
    cell,
    emit_object,
    emit_rows,
    parse_uuid,
    payload_filter,
    resolve_instant,
    session,
    to_json,
    truncate,
)
from jobkeeper.errors import JobFinishedError
from jobkeeper.types import JobStatus, Page

if TYPE_CHECKING:
    from jobkeeper.types import Job

MAX_PAGE = 1000
PAYLOAD_SCAN = 20_000
"""Jobs a payload filter (`--where`) looks at per statement, as the API's list does."""
FINAL = {JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value}
STATUSES = [s.value for s in JobStatus]
JOB_FIELDS = [
    "id",
    "status",
    "queue",
    "type",
    "tenant_id",
    "priority",
    "attempts",
    "max_attempts",
    "idempotency_key",
    "scheduled_at",
    "started_at",
    "completed_at",
    "created_at",
    "last_error",
]


@click.group()
def jobs() -> None:
    """Jobs: list, show, retry, cancel, wait."""


def _row(job: Job) -> dict[str, Any]:
    """The job as the row the commands print: its columns, states as their text."""
    row = {f.name: getattr(job, f.name) for f in dataclasses.fields(job) if f.name != "deduplicated"}
    return row | {"status": job.status.value, "tier": job.tier.value}


def _job_or_fail(s: Session, job_id: uuid.UUID) -> dict[str, Any]:
    # The store is imported on use, in every command: it imports psycopg, which `--help` must not load.
    from jobkeeper.store import jobs as store_jobs

    job = s.run(store_jobs.get(job_id))
    if job is None:
        raise Failed(f"no job {job_id}")
    return _row(job)


@jobs.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Repeatable.")
@click.option("--queue", default=None)
@click.option("--type", "job_type", default=None)
@TENANT_FILTER
@click.option("--since", type=Instant(), default=None, help="Created at or after: ISO time or e.g. 2h (ago).")
@click.option("--until", type=Instant(), default=None, help="Created before: ISO time or e.g. 30m (ago).")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="KEY=VALUE",
    help="Payload field equality (repeatable; JSON values, dots for nested keys).",
)
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--after", metavar="JOB_ID", default=None, help="Continue after this job (the last one shown).")
@JSON_OPTION
def jobs_list(
    statuses: tuple[str, ...],
    queue: str | None,
    job_type: str | None,
    tenant: uuid.UUID | None,
    since: datetime | timedelta | None,
    until: datetime | timedelta | None,
    where: tuple[str, ...],
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Jobs, newest first. When a page is full, the command to fetch the next one goes to stderr."""
    document = payload_filter(where)
    from jobkeeper.store import jobs as store_jobs

    after_id = parse_uuid(after, "job id") if after else None
    with session() as s:
        now = s.now()
        before = None
        if after_id is not None:
            before = (_job_or_fail(s, after_id)["created_at"], after_id)
        where_jobs = store_jobs.JobFilter(
            tenant_id=tenant,
            statuses=list(statuses) or None,
            type=job_type,
            queue=queue,
            created_after=resolve_instant(since, now),
            created_before=resolve_instant(until, now),
            payload=document,
        )
        found: list[Job] = []
        # A payload filter looks at PAYLOAD_SCAN jobs per statement (the API's window, no index): go on
        # from each window's edge until the page is full or the history ends, each statement bounded.
        while True:
            page = s.run(
                store_jobs.list_page(where_jobs, Page(before, limit - len(found)), scan_limit=PAYLOAD_SCAN)
            )
            found += page.jobs
            before = page.next_before
            if document is None or len(found) >= limit or before is None:
                break
        rows = [_row(job) for job in found]
    emit_rows(
        rows,
        as_json,
        ["id", "status", "queue", "type", "attempts", "created_at", "last_error"],
        lambda row: (
            row
            | {
                "attempts": f"{row['attempts']}/{row['max_attempts']}",
                "last_error": truncate(row["last_error"], 50),
            }
        ),
    )
    if len(rows) == limit:
        click.echo(f"more: add --after {rows[-1]['id']}", err=True)


@jobs.command("show")
@click.argument("job_id")
@click.option("--traceback", "with_traceback", is_flag=True, help="Show each error's traceback tail.")
@JSON_OPTION
def jobs_show(job_id: str, with_traceback: bool, as_json: bool) -> None:
    """One job: its fields, payload, result, progress and every attempt's error."""
    from jobkeeper.store import jobs as store_jobs

    ident = parse_uuid(job_id, "job id")
    with session() as s:
        row = s.run(store_jobs.detail(ident))
    if row is None:
        raise Failed(f"no job {ident}")
    if as_json:
        click.echo(to_json(row))
        return
    emit_object(
        row,
        False,
        [
            *JOB_FIELDS[:5],
            "tenant_name",
            *JOB_FIELDS[5:],
            "cancel_requested",
            "worker_id",
            "dead_letter_id",
        ],
    )
    for name in ("payload", "result", "progress"):
        click.echo(f"{name}:")
        click.echo(_indent(to_json(row[name])))
    errors = row["errors"] or []
    click.echo(f"errors: {len(errors)}")
    for error in errors:
        click.echo(
            f"  attempt {error.get('attempt', '?')} at {error.get('at', '?')}: "
            f"{error.get('type', 'Error')}: {error.get('message', '')}"
        )
        if with_traceback and error.get("traceback"):
            click.echo(_indent(str(error["traceback"]).rstrip(), 4))


def _indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


@jobs.command("retry")
@click.argument("job_id")
@JSON_OPTION
def jobs_retry(job_id: str, as_json: bool) -> None:
    """Put a failed or cancelled job back to pending with a fresh attempt budget (its error history is
    kept; its dead letter, if any, is marked replayed). Exit 1 when the job is in another state."""
    from jobkeeper.store import jobs as store_jobs

    ident = parse_uuid(job_id, "job id")
    with session() as s:
        retried = s.run(store_jobs.retry(ident))
    if retried is None:
        raise Failed(f"no job {ident}")
    row = _row(retried.job) | {"changed": retried.changed}
    if not retried.changed:
        raise Failed(f"job {ident} is {row['status']}: only failed or cancelled jobs can be retried")
    emit_object(row, as_json, ["id", "status", "queue", "type", "attempts", "max_attempts", "scheduled_at"])


@jobs.command("cancel")
@click.argument("job_id")
@JSON_OPTION
def jobs_cancel(job_id: str, as_json: bool) -> None:
    """Cancel a pending or waiting job at once (its waiting dependents too); ask a running one to stop
    (its worker cancels it within about a second). Cancelling a cancelled job again is a no-op; exit 1
    when it completed or failed already."""
    from jobkeeper.store import jobs as store_jobs

    ident = parse_uuid(job_id, "job id")
    with session() as s:
        try:
            job = s.run(store_jobs.cancel(ident))
        except JobFinishedError as exc:
            raise Failed(f"job {ident} is {exc.job.status.value} already: nothing to cancel") from None
    if job is None:
        raise Failed(f"no job {ident}")
    row = _row(job)
    row["cancel"] = "requested" if row["status"] == JobStatus.PROCESSING.value else "done"
    emit_object(row, as_json, ["id", "status", "cancel", "queue", "type"])


@jobs.command("wait")
@click.argument("job_id")
@click.option(
    "--timeout", type=Duration(), default=None, help="Give up after this long (e.g. 30s, 5m; default: never)."
)
@JSON_OPTION
def jobs_wait(job_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait until the job is completed, failed or cancelled, polling its row (every 50 ms at first,
    backing off to 1 s). Exit 0 when it completed, 1 when it failed or was cancelled (or does not
    exist), 124 on --timeout."""
    ident = parse_uuid(job_id, "job id")
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.05
    with session() as s:
        while True:
            row = _job_or_fail(s, ident)
            if row["status"] in FINAL:
                break
            if deadline is not None and time.monotonic() >= deadline:
                emit_object(row, as_json, ["id", "status", "attempts", "scheduled_at"])
                click.echo(f"Error: job {ident} is still {row['status']} after {timeout:g} s", err=True)
                raise SystemExit(EXIT_TIMEOUT)
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            time.sleep(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 2, 1.0)
    if not as_json:
        row = {**row, "result": _result_summary(row["result"], ident)}
    emit_object(row, as_json, ["id", "status", "attempts", "completed_at", "result", "last_error"])
    if row["status"] != JobStatus.COMPLETED.value:
        click.echo(f"Error: job {ident} {row['status']}: {cell(row['last_error'])}", err=True)
        raise SystemExit(EXIT_FAILED)


SUMMARY_TEXT = 120
"""A result's text value longer than this is summarised by `jobs wait` (a report's HTML is 100s of KB)."""
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _result_summary(result: Any, ident: uuid.UUID) -> Any:
    """The result with every long text replaced by what it is: its size, an HTML document's title, and
    where to get the whole (`--json`, or the job's page in the dashboard)."""
    if isinstance(result, dict):
        return {key: _result_summary(value, ident) for key, value in result.items()}
    if isinstance(result, list):
        return [_result_summary(value, ident) for value in result]
    if not isinstance(result, str) or len(result) <= SUMMARY_TEXT:
        return result
    size = len(result.encode())
    title = _TITLE.search(result)
    if title is not None:
        kind = f"HTML {title.group(1).strip()!r}"
    else:
        kind = "HTML" if "<html" in result[:500].lower() else "text"
    return f"<{kind}, {size:,} bytes: `jobkeeper jobs wait {ident} --json` prints it whole>"
