"""`generate-report`: a report of queue activity over a period, as CSV and HTML, stored and emailed.

Payload (`payload.py`; every field optional):
    {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"   (default: the `hours` before now)
     "hours": 24, "bucket": "hour" | "day"   (default: hour up to 48 hours, else day),
     "tenant": "<uuid>" | "all"             (default: the job's own tenant),
     "queues": ["money", ...], "recipients": ["ops@example.com", ...]}

What it holds, all computed in SQL (`store/sql/reports.sql`) in one read-only snapshot: jobs finished per
queue and hour/day by final status; jobs enqueued; failed attempts by job type and error type; dead letters
by queue and type (and the latest ones); p50/p90/p95/p99 (percentile_cont) of the wait from enqueue to start
and of the run time of the jobs completed in the period, per queue and overall.

Where it goes: both documents are stored in the job's result when together they fit in
`MAX_INLINE_BYTES` (256 KiB, so that the jobs table stays lean); a larger report is written as
`report-<job id>.csv` and `.html` under `JOBKEEPER_REPORTS_DIR` (its paths are in the result), or, without
that setting, left out of the result, which says so. With `recipients`, it is emailed through the email
transport (`JOBKEEPER_EMAIL_TRANSPORT`): the HTML as the message, the CSV attached.

The CSV is tidy ("long"): one value per row, with the columns `section, queue, job_type, error_type,
bucket_start, metric, value`. Text that a spreadsheet would run as a formula (=, +, -, @ first) is
prefixed with a quote; the HTML is autoescaped.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from jobkeeper.config import Settings
from jobkeeper.processors.email import processor as email_processor
from jobkeeper.processors.reports.payload import JOB_TYPE, GenerateReport
from jobkeeper.processors.support import (
    InvalidPayloadError,
    parse,
    processor,
    require_database,
)
from jobkeeper.store import reports as report_store
from jobkeeper.store import server
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

TEMPLATES = Path(__file__).parents[1] / "templates" / "reports"
MAX_INLINE_BYTES = 256 * 1024
MAX_PERIOD = timedelta(days=366)
RECENT_DEAD_LETTERS = 20
PERCENTILES = (50, 90, 95, 99)
CSV_COLUMNS = ("section", "queue", "job_type", "error_type", "bucket_start", "metric", "value")


def problems(settings: Settings) -> dict[str, list[str]]:
    found = []
    if settings.database_url is None:
        found.append("DATABASE_URL is not set (generate-report reads the jobkeeper database)")
    directory = settings.reports_dir
    if directory is not None and directory.exists() and not directory.is_dir():
        found.append(f"JOBKEEPER_REPORTS_DIR names {str(directory)!r}, which is not a directory")
    return {JOB_TYPE: found}


# -- the request ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportRequest:
    start: datetime
    end: datetime
    bucket: str
    tenant_id: uuid.UUID | None
    """None: every tenant."""
    queues: tuple[str, ...] | None
    recipients: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        return "all tenants" if self.tenant_id is None else f"tenant {self.tenant_id}"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def parse_request(payload: Any, own_tenant: uuid.UUID, now: datetime) -> ReportRequest:
    """The report a job's payload asks for: its model read once, with the defaults and the period's
    bounds (which depend on `now`) applied."""
    data = parse(GenerateReport, payload)
    end = _time(data.to) if data.to is not None else now.astimezone(UTC)
    if data.from_ is not None:
        start = _time(data.from_)
    else:
        start = end - timedelta(hours=data.hours if data.hours is not None else 24)
    if not start < end:
        raise InvalidPayloadError("from", "must be before `to`")
    if end - start > MAX_PERIOD:
        raise InvalidPayloadError("from", "a report covers at most 366 days")
    bucket = data.bucket or ("hour" if end - start <= timedelta(hours=48) else "day")
    if data.tenant is None:
        tenant_id: uuid.UUID | None = own_tenant
    elif data.tenant == "all":
        tenant_id = None
    else:
        tenant_id = uuid.UUID(data.tenant)
    recipients: tuple[str, ...] = ()
    if data.recipients is not None:
        recipients = email_processor.recipients(data.recipients, "recipients")
    queues = tuple(data.queues) if data.queues is not None else None
    return ReportRequest(start, end, bucket, tenant_id, queues, recipients)


# -- the data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    request: ReportRequest
    generated_at: datetime
    throughput: list[dict[str, Any]]
    enqueued: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    recent_dead_letters: list[dict[str, Any]]
    latency: list[dict[str, Any]]
    totals: dict[str, Any] = field(default_factory=dict)


async def collect(db: report_store.ReadOnly, request: ReportRequest, generated_at: datetime) -> Report:
    """Read the report's sections in one snapshot and sum them up."""
    rows = await db.run(
        report_store.collect(
            start=request.start,
            end=request.end,
            bucket=request.bucket,
            tenant_id=request.tenant_id,
            queues=request.queues,
            recent=RECENT_DEAD_LETTERS,
        )
    )
    latency = [
        {
            "queue": row["queue"] if row["queue"] is not None else "all",
            "jobs": row["jobs"],
            "wait": list(row["wait_seconds"]),
            "run": list(row["run_seconds"]),
            "max_wait": row["max_wait_seconds"],
            "max_run": row["max_run_seconds"],
        }
        for row in rows.latency
    ]
    throughput = rows.throughput
    overall = next((row for row in latency if row["queue"] == "all"), None)
    totals = {
        "completed": sum(row["completed"] for row in throughput),
        "failed": sum(row["failed"] for row in throughput),
        "cancelled": sum(row["cancelled"] for row in throughput),
        "enqueued": sum(row["enqueued"] for row in rows.enqueued),
        "failed_attempts": sum(row["attempts"] for row in rows.failures),
        "dead_letters": sum(row["dead"] for row in rows.dead_letters),
        "p95_wait_seconds": overall["wait"][PERCENTILES.index(95)] if overall else None,
        "p95_run_seconds": overall["run"][PERCENTILES.index(95)] if overall else None,
    }
    totals["finished"] = totals["completed"] + totals["failed"] + totals["cancelled"]
    return Report(
        request,
        generated_at,
        throughput,
        rows.enqueued,
        rows.failures,
        rows.dead_letters,
        rows.recent_dead_letters,
        latency,
        totals,
    )


# -- the documents ----------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _cell(value: Any) -> str:
    """Text for a spreadsheet: never a formula (OWASP CSV injection), times in UTC ISO-8601."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)

    def row(section: str, metric: str, value: Any, **keys: Any) -> None:
        writer.writerow(
            [
                _cell(section),
                _cell(keys.get("queue")),
                _cell(keys.get("job_type")),
                _cell(keys.get("error_type")),
                _cell(keys.get("bucket_start")),
                _cell(metric),
                _cell(value),
            ]
        )

    request = report.request
    row("report", "from", request.start)
    row("report", "to", request.end)
    row("report", "scope", request.scope)
    for name in (
        "finished",
        "completed",
        "failed",
        "cancelled",
        "enqueued",
        "failed_attempts",
        "dead_letters",
    ):
        row("totals", name, report.totals[name])
    for item in report.throughput:
        for metric in ("completed", "failed", "cancelled"):
            row("throughput", metric, item[metric], queue=item["queue"], bucket_start=item["bucket_start"])
    for item in report.enqueued:
        for metric in ("enqueued", "unfinished"):
            row("enqueued", metric, item[metric], queue=item["queue"])
    for item in report.failures:
        keys = {"queue": item["queue"], "job_type": item["job_type"], "error_type": item["error_type"]}
        for metric in ("attempts", "jobs", "jobs_failed"):
            row("failures", metric, item[metric], **keys)
    for item in report.dead_letters:
        for metric in ("dead", "replayed"):
            row("dead_letters", metric, item[metric], queue=item["queue"], job_type=item["job_type"])
    for item in report.latency:
        for kind in ("wait", "run"):
            for percentile, value in zip(PERCENTILES, item[kind], strict=True):
                row("latency", f"{kind}_p{percentile}_seconds", value, queue=item["queue"])
            row("latency", f"{kind}_max_seconds", item[f"max_{kind}"], queue=item["queue"])
        row("latency", "jobs", item["jobs"], queue=item["queue"])
    return out.getvalue()


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
    )


def to_html(report: Report) -> str:
    request = report.request

    def times(rows: Sequence[Mapping[str, Any]], *names: str) -> list[dict[str, Any]]:
        return [{**row, **{n: _iso(row[n]) for n in names if row.get(n) is not None}} for row in rows]

    return (
        _environment()
        .get_template("queue_activity.html")
        .render(
            period_from=_iso(request.start),
            period_to=_iso(request.end),
            scope=request.scope,
            queues=list(request.queues or ()),
            bucket=request.bucket,
            totals=report.totals,
            throughput=times(report.throughput, "bucket_start"),
            enqueued=report.enqueued,
            failures=report.failures,
            dead_letters=report.dead_letters,
            recent_dead_letters=times(report.recent_dead_letters, "failed_at"),
            latency=report.latency,
            generated_at=_iso(report.generated_at),
        )
    )


def summary(report: Report) -> dict[str, Any]:
    request = report.request
    return {
        "from": _iso(request.start),
        "to": _iso(request.end),
        "scope": request.scope,
        "queues": list(request.queues) if request.queues is not None else None,
        "bucket": request.bucket,
        "totals": report.totals,
    }


def store(documents: dict[str, str], settings: Settings, job_id: uuid.UUID) -> dict[str, Any]:
    """Both documents inline when they fit, else as files under JOBKEEPER_REPORTS_DIR."""
    size = sum(len(text.encode()) for text in documents.values())
    if size <= MAX_INLINE_BYTES:
        return {"storage": "result", **documents}
    if settings.reports_dir is None:
        return {
            "storage": "none",
            "note": f"the report is {size} bytes, above the {MAX_INLINE_BYTES} kept in a job's result; "
            "set JOBKEEPER_REPORTS_DIR to keep larger reports as files",
        }
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, text in documents.items():
        path = settings.reports_dir / f"report-{job_id}.{kind}"
        path.write_text(text, encoding="utf-8")
        paths[f"{kind}_path"] = str(path)
    return {"storage": "files", **paths}


def report_email(
    report: Report, html: str, csv_text: str, settings: Settings, job_id: uuid.UUID
) -> email_processor.Email:
    request = report.request
    env = email_processor.template_environment(settings.email_templates_dir)
    data = {
        "period_from": _iso(request.start),
        "period_to": _iso(request.end),
        "scope": request.scope,
        "totals": report.totals,
    }
    rendered = email_processor.render(env, "report", data)
    stamp = f"{request.start:%Y%m%dT%H%M}-{request.end:%Y%m%dT%H%M}"
    return email_processor.Email(
        to=request.recipients,
        subject=rendered.subject,
        text=rendered.text,
        html=html,
        attachments=(email_processor.Attachment(f"queue-report-{stamp}.csv", csv_text.encode(), "text/csv"),),
        message_id=email_processor.message_id(job_id, settings.email_from),
        tags={"jobkeeper_job_id": str(job_id), "template": "report"},
    )


# -- the job ----------------------------------------------------------------------------------------------


async def generate(db: report_store.ReadOnly, payload: Any, own_tenant: uuid.UUID) -> tuple[Report, str, str]:
    """Collect the report a payload asks for; returns it with its CSV and HTML."""
    now = await db.run(server.database_now())
    request = parse_request(payload, own_tenant, now)
    report = await collect(db, request, now)
    return report, to_csv(report), to_html(report)


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Register `generate-report` in `registry` unless the type has a handler already (yours wins)."""

    @processor(registry, JOB_TYPE, "background", settings)
    async def generate_report(payload: Any, ctx: JobContext, current: Settings) -> dict[str, Any]:
        database_url = require_database(JOB_TYPE, current, problems)
        async with report_store.read_only(database_url, **current.connection_kwargs()) as db:
            report, csv_text, html = await generate(db, payload, ctx.job.tenant_id)
        await ctx.progress(1, 2, "report computed")
        result: dict[str, Any] = {"summary": summary(report)}
        result |= store({"csv": csv_text, "html": html}, current, ctx.job.id)
        if report.request.recipients:
            message = report_email(report, html, csv_text, current, ctx.job.id)
            sent = await email_processor.deliver(current, message, job_type=JOB_TYPE)
            result["emailed"] = {"to": list(report.request.recipients), **sent}
        # The second and last step (stored, and mailed if asked): a finished report shows 2 of 2.
        await ctx.progress(2, 2, "report stored" + (" and emailed" if report.request.recipients else ""))
        ctx.logger.info(
            "report %s to %s: %s", result["summary"]["from"], result["summary"]["to"], report.totals
        )
        return result
