"""generate-report on a small seeded history: known counts and percentiles, CSV and HTML, storage, email."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobkeeper import DEV_TENANT_ID, Client
from jobkeeper.processors.reports import processor as reports
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError
from jobkeeper.worker import Registry
from tests.processors.conftest import WorkerFactory
from tests.processors.helpers import make_ctx, run, settings
from tests.processors.servers import smtp_server
from tests.worker.helpers import wait_for_status

Conn = psycopg.AsyncConnection[Any]
DAY = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
EVIL = "<script>alert(1)</script>"
TIERS = {"money": "durable", "communication": "fast", "background": "ephemeral"}


def at(hours: float, seconds: float = 0.0) -> datetime:
    return DAY + timedelta(hours=hours, seconds=seconds)


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def insert_job(
    db: Conn,
    queue: str,
    job_type: str,
    status: str,
    created: datetime,
    wait: float,
    run_time: float,
    *,
    errors: list[dict[str, Any]] | None = None,
    tenant: uuid.UUID = DEV_TENANT_ID,
) -> uuid.UUID:
    started = created + timedelta(seconds=wait)
    cur = await db.execute(
        "INSERT INTO jobkeeper.jobs (tenant_id, queue, type, payload, status, tier, attempts, max_attempts,"
        " errors, created_at, scheduled_at, started_at, completed_at)"
        " VALUES (%s, %s, %s, '{}', %s, %s, 1, 3, %s, %s, %s, %s, %s) RETURNING id",
        (
            tenant,
            queue,
            job_type,
            status,
            TIERS[queue],
            json.dumps(errors or []),
            created,
            created,
            started,
            started + timedelta(seconds=run_time),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    job_id: uuid.UUID = row[0]
    return job_id


MONEY_WAITS, MONEY_RUNS = [1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]
EMAIL_WAITS, EMAIL_RUNS = [0.5, 1.5, 6.0], [1.0, 3.0, 2.0]


async def seed(db: Conn) -> uuid.UUID:
    """A day of history (2026-01-01, UTC) of the development tenant, plus noise outside it."""
    for wait, run_time in zip(MONEY_WAITS, MONEY_RUNS, strict=True):
        await insert_job(db, "money", "payment-process", "completed", at(10), wait, run_time)
    declined = [
        {"type": "CardDeclined", "message": "card_declined", "at": at(11).isoformat(), "attempt": 1},
    ]
    dead = await insert_job(db, "money", EVIL, "failed", at(11, -5), 1, 4, errors=declined)
    await db.execute(
        "INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,"
        " max_attempts, last_error, failed_at) VALUES (%s, %s, 'money', %s, '{}', 7, 1, 3, %s, %s)",
        (DEV_TENANT_ID, dead, EVIL, "CardDeclined: card_declined <b>", at(11)),
    )
    timeouts = [
        {"type": "TimeoutError", "message": "job timed out", "at": at(12).isoformat(), "attempt": 1},
        {"type": "TimeoutError", "message": "job timed out", "at": at(12, 30).isoformat(), "attempt": 2},
    ]
    for n, (wait, run_time) in enumerate(zip(EMAIL_WAITS, EMAIL_RUNS, strict=True)):
        await insert_job(
            db,
            "communication",
            "send-email",
            "completed",
            at(12),
            wait,
            run_time,
            errors=timeouts if n == 2 else None,
        )
    await insert_job(
        db,
        "communication",
        '=HYPERLINK("http://x")',
        "failed",
        at(13),
        1,
        1,
        errors=[{"type": "ProviderError", "message": "x", "at": at(13, 2).isoformat(), "attempt": 1}],
    )
    await insert_job(db, "background", "analytics-track", "cancelled", at(14), 1, 1)
    # Outside the period, and another tenant's job inside it.
    await insert_job(db, "money", "payment-process", "completed", at(30), 1, 100)
    other = uuid.uuid4()
    await db.execute("INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, 'Other', 'other')", (other,))
    await insert_job(db, "money", "payment-process", "completed", at(10), 1000, 1000, tenant=other)
    return other


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def value(rows: list[dict[str, str]], section: str, metric: str, **keys: str) -> float:
    (row,) = [
        r
        for r in rows
        if r["section"] == section and r["metric"] == metric and all(r[k] == v for k, v in keys.items())
    ]
    return float(row["value"])


async def test_the_report_of_a_seeded_day(db: Conn, db_url: str) -> None:
    await seed(db)
    result = await run(reports, settings(database_url=db_url), PERIOD | {"bucket": "hour"})

    summary = result["summary"]
    assert summary["scope"] == f"tenant {DEV_TENANT_ID}"
    assert (summary["from"], summary["to"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    totals = summary["totals"]
    assert (totals["completed"], totals["failed"], totals["cancelled"], totals["finished"]) == (7, 2, 1, 10)
    assert totals["failed_attempts"] == 4
    assert totals["dead_letters"] == 1
    assert result["storage"] == "result"

    rows = csv_rows(result["csv"])
    assert list(rows[0]) == list(reports.CSV_COLUMNS)
    # Throughput per hour: the bucket is the hour the jobs finished in.
    assert value(rows, "throughput", "completed", queue="money", bucket_start="2026-01-01T10:00:00Z") == 4
    assert value(rows, "throughput", "failed", queue="money", bucket_start="2026-01-01T11:00:00Z") == 1
    assert (
        value(rows, "throughput", "completed", queue="communication", bucket_start="2026-01-01T12:00:00Z")
        == 3
    )
    assert (
        value(rows, "throughput", "cancelled", queue="background", bucket_start="2026-01-01T14:00:00Z") == 1
    )
    assert value(rows, "enqueued", "enqueued", queue="money") == 5  # the other tenant's job is not counted
    # Failures by type: every failed attempt recorded in the period, with the jobs it hit.
    assert value(rows, "failures", "attempts", job_type="send-email", error_type="TimeoutError") == 2
    assert value(rows, "failures", "jobs", job_type="send-email", error_type="TimeoutError") == 1
    assert value(rows, "failures", "jobs_failed", job_type=EVIL, error_type="CardDeclined") == 1
    # Text a spreadsheet would run as a formula is defused.
    assert (
        value(rows, "failures", "attempts", job_type='\'=HYPERLINK("http://x")', error_type="ProviderError")
        == 1
    )
    assert value(rows, "dead_letters", "dead", queue="money", job_type=EVIL) == 1
    # Latency percentiles (percentile_cont) per queue and overall, in seconds.
    assert value(rows, "latency", "run_p50_seconds", queue="money") == 25.0
    assert value(rows, "latency", "wait_p95_seconds", queue="money") == pytest.approx(3.85)
    assert value(rows, "latency", "jobs", queue="all") == 7
    waits, runs = MONEY_WAITS + EMAIL_WAITS, MONEY_RUNS + EMAIL_RUNS
    for fraction, name in ((0.5, "p50"), (0.9, "p90"), (0.95, "p95"), (0.99, "p99")):
        assert value(rows, "latency", f"wait_{name}_seconds", queue="all") == pytest.approx(
            percentile_cont(waits, fraction)
        )
        assert value(rows, "latency", f"run_{name}_seconds", queue="all") == pytest.approx(
            percentile_cont(runs, fraction)
        )
        assert value(rows, "latency", f"run_{name}_seconds", queue="communication") == pytest.approx(
            percentile_cont(EMAIL_RUNS, fraction)
        )
    assert value(rows, "latency", "wait_max_seconds", queue="all") == 6.0

    html = result["html"]
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "CardDeclined: card_declined &lt;b&gt;" in html
    assert "<td>money</td><td>2026-01-01T10:00:00Z</td>" in html
    assert "25.000" in html


async def test_all_tenants_and_queue_filters(db: Conn, db_url: str) -> None:
    other = await seed(db)
    everyone = await run(
        reports, settings(database_url=db_url), PERIOD | {"tenant": "all", "queues": ["money"]}
    )
    totals = everyone["summary"]["totals"]
    assert everyone["summary"]["scope"] == "all tenants"
    assert (totals["completed"], totals["failed"], totals["cancelled"]) == (5, 1, 0)
    only_other = await run(reports, settings(database_url=db_url), PERIOD | {"tenant": str(other)})
    assert only_other["summary"]["totals"]["completed"] == 1
    assert only_other["summary"]["totals"]["p95_run_seconds"] == 1000.0
    empty = await run(
        reports, settings(database_url=db_url), {"from": "2025-01-01T00:00:00Z", "to": "2025-01-03T00:00:00Z"}
    )
    assert empty["summary"]["totals"]["finished"] == 0
    assert empty["summary"]["bucket"] == "hour"
    assert "No job finished in this period." in empty["html"]


async def test_the_report_is_emailed_with_the_csv_attached(db: Conn, db_url: str) -> None:
    await seed(db)
    with smtp_server() as server:
        current = settings(
            database_url=db_url,
            email_transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
            email_from="reports@jk.example.com",
        )
        result = await run(reports, current, PERIOD | {"recipients": ["ops@jk.example.com"]})
    (delivery,) = server.deliveries
    message = delivery.message
    assert delivery.rcpt_tos == ["ops@jk.example.com"]
    assert message["Subject"] == "Queue report 2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert "Finished jobs: 10 (7 completed, 2 failed, 1 cancelled)" in text.get_content()
    assert html is not None
    assert "&lt;script&gt;" in html.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "queue-report-20260101T0000-20260102T0000.csv"
    assert attachment.get_content_type() == "text/csv"
    assert (
        attachment.get_content() == result["csv"]
        or attachment.get_content().replace("\n", "\r\n") == result["csv"]
    )
    assert result["emailed"]["to"] == ["ops@jk.example.com"]


async def test_recipients_without_email_configured_fail_permanently(db_url: str) -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(reports, settings(database_url=db_url), PERIOD | {"recipients": ["ops@jk.example.com"]})
    assert "JOBKEEPER_EMAIL_TRANSPORT" in str(missing.value)
    assert missing.value.job_type == "generate-report"


def test_large_reports_are_written_to_the_reports_dir(tmp_path: Path) -> None:
    job_id = uuid.uuid4()
    big = {"csv": "x" * reports.MAX_INLINE_BYTES, "html": "<p>big</p>"}
    stored = reports.store(big, settings(reports_dir=tmp_path / "reports"), job_id)
    assert stored["storage"] == "files"
    assert Path(stored["csv_path"]).read_text() == big["csv"]
    assert Path(stored["html_path"]).name == f"report-{job_id}.html"
    kept_out = reports.store(big, settings(), job_id)
    assert kept_out["storage"] == "none"
    assert "JOBKEEPER_REPORTS_DIR" in kept_out["note"]
    assert reports.store({"csv": "a", "html": "b"}, settings(), job_id) == {
        "storage": "result",
        "csv": "a",
        "html": "b",
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"hours": 0}, "hours"),
        ({"bucket": "week"}, "bucket"),
        ({"tenant": "venue-1"}, ""),  # the model's own rule, about the payload as a whole
        ({"queues": "money"}, "queues"),
        ({"recipients": ["not an address"]}, "recipients"),
    ],
)
def test_invalid_requests(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayloadError) as invalid:
        reports.parse_request(payload, DEV_TENANT_ID, DAY)
    assert invalid.value.field == field


def test_default_period_and_bucket() -> None:
    request = reports.parse_request({}, DEV_TENANT_ID, DAY)
    assert (request.start, request.end, request.bucket) == (DAY - timedelta(hours=24), DAY, "hour")
    week = reports.parse_request({"hours": 24 * 7}, DEV_TENANT_ID, DAY)
    assert week.bucket == "day"
    assert week.tenant_id == DEV_TENANT_ID


async def test_without_a_database_url_the_report_fails_permanently() -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(reports, settings(), {})
    assert "DATABASE_URL" in str(missing.value)
    assert make_ctx("generate-report", {}).job.queue == "background"


async def test_a_finished_report_shows_its_last_step(
    client: Client, db: Conn, db_url: str, make_worker: WorkerFactory
) -> None:
    # Under a real worker, the progress written last is the report's final step: 2 of 2, not 1 of 2.
    registry = Registry()
    reports.register(registry, settings(database_url=db_url))
    job = await client.enqueue("generate-report", PERIOD)
    async with make_worker(registry):
        row = await wait_for_status(db, job.id, "completed")
    assert row["progress"]["current"] == row["progress"]["total"] == 2
    assert row["progress"]["percent"] == 100
