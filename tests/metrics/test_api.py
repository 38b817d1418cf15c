"""Prometheus metrics: queue state from the database at scrape time, HTTP requests by route template."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import Conn, dead_letter, insert_alert, insert_job, insert_worker
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_read_the_queues_at_scrape_time(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    await http.post(
        "/api/v1/queue/jobs",
        json={"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}},
        headers=tokens.user_a,
    )
    await insert_job(owner, tokens.tenants.b, status="processing")
    for seconds in (0.2, 0.2, 3.0):
        await insert_job(
            owner,
            tokens.tenants.a,
            status="completed",
            queue="money",
            job_type="payment-process",
            run_seconds=seconds,
        )
    await insert_job(owner, tokens.tenants.a, status="pending", attempts=1)
    await dead_letter(owner, tokens.tenants.b)
    await insert_alert(owner, tokens.tenants.a, severity="critical")
    await insert_worker(owner)
    await owner.execute("UPDATE jobkeeper.queues SET paused = true WHERE name = 'background'")

    response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert _value(samples, "jobkeeper_database_up") == 1
    assert _value(samples, "jobkeeper_queue_depth", queue="communication", state="waiting") == 2
    assert _value(samples, "jobkeeper_queue_depth", queue="communication", state="processing") == 1
    assert _value(samples, "jobkeeper_queue_depth", queue="money", state="waiting") == 0
    assert _value(samples, "jobkeeper_queue_oldest_waiting_seconds", queue="communication") >= 0
    assert _value(samples, "jobkeeper_queue_paused", queue="background") == 1
    assert _value(samples, "jobkeeper_job_results", queue="money", result="completed") == 3
    assert _value(samples, "jobkeeper_job_results", queue="communication", result="failed") == 1
    assert _value(samples, "jobkeeper_job_results", queue="communication", result="dead") == 1
    assert _value(samples, "jobkeeper_job_results", queue="communication", result="retried") == 1
    histogram = {"queue": "money", "type": "payment-process"}
    assert _value(samples, "jobkeeper_job_duration_seconds_count", **histogram) == 3
    assert _value(samples, "jobkeeper_job_duration_seconds_bucket", le="0.25", **histogram) == 2
    assert _value(samples, "jobkeeper_job_duration_seconds_bucket", le="2.5", **histogram) == 2
    assert _value(samples, "jobkeeper_job_duration_seconds_bucket", le="5.0", **histogram) == 3
    assert abs(_value(samples, "jobkeeper_job_duration_seconds_sum", **histogram) - 3.4) < 0.01
    assert _value(samples, "jobkeeper_dead_letters", queue="communication") == 1
    assert _value(samples, "jobkeeper_rate_limiter_tokens", limiter="stripe") == 20
    # The processing SMS job holds a twilio slot (slots are counted from processing jobs).
    assert _value(samples, "jobkeeper_rate_limiter_in_flight", limiter="twilio") == 1
    assert _value(samples, "jobkeeper_rate_limiter_waits_total", limiter="twilio") == 0
    assert _value(samples, "jobkeeper_alerts_raised", severity="critical") == 1
    assert _value(samples, "jobkeeper_alert_deliveries", severity="critical") == 1
    assert _value(samples, "jobkeeper_alerts_unacknowledged", severity="critical") == 1
    assert _value(samples, "jobkeeper_workers_live") == 1
    assert _value(samples, "jobkeeper_metrics_window_seconds") == 300

    # HTTP requests are counted by route template, never by raw path.
    await http.get("/api/v1/queue/jobs/00000000-0000-0000-0000-00000000abcd", headers=tokens.user_a)
    text = (await http.get("/api/v1/queue/metrics/prometheus")).text
    samples = _samples(text)
    labels = {"method": "GET", "route": "/api/v1/queue/jobs/{job_id}", "status": "404"}
    assert _value(samples, "jobkeeper_http_requests_total", **labels) == 1
    created = {"method": "POST", "route": "/api/v1/queue/jobs", "status": "201"}
    assert _value(samples, "jobkeeper_http_requests_total", **created) == 1
    assert (
        _value(samples, "jobkeeper_http_request_duration_seconds_count", method="GET", route="/metrics") == 1
    )
    await http.request("BREW", "/api/v1/queue/jobs")
    await http.get("/api/v1/queue/no/such/path/12345")
    samples = _samples((await http.get("/metrics")).text)
    assert (
        _value(
            samples, "jobkeeper_http_requests_total", method="OTHER", route="/api/v1/queue/jobs", status="405"
        )
        == 1
    )
    assert (
        _value(samples, "jobkeeper_http_requests_total", method="GET", route="unmatched", status="404") == 1
    )
    # Nothing that identifies a tenant leaves through the metrics.
    for tenant in (tokens.tenants.a, tokens.tenants.b):
        assert str(tenant) not in text
    assert not re.search(r"abcd", text)
