"""Prometheus metrics: HTTP requests measured in-process, queue state read from the database at scrape time.

Each app has its own `CollectorRegistry`. Database-backed metrics are read in one round trip per scrape
(a pipeline of grouped queries over indexed columns) and span all tenants; labels carry queue, job type,
state and severity names only — never tenant ids or payload data. An anonymous scrape (`anonymous`) shows
no tenant's own queue, job type or limiter name: they are summed into `_private` series or left out.

Durations and results cover the last `JOBKEEPER_METRICS_WINDOW` seconds (default 300) of finished jobs,
because workers may run in other processes: they are gauges of that window, including the duration
histogram (use `histogram_quantile` on it directly, not on `rate()`). Outbound limiters export their
tokens, calls in flight, and a counter of jobs put back for want of a token or slot (`waits`, kept in the
limiter's row by the workers' gate).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DURATION_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
HTTP_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RESULTS = ("completed", "failed", "cancelled", "retried", "dead")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class Snapshot:
    """What the database said at the last scrape."""

    up: bool = False
    window: float = 0.0
    queues: dict[str, bool] = field(default_factory=dict)
    """Queue name → paused."""
    depth: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    limiters: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    live_workers: int = 0


class DatabaseCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        up = GaugeMetricFamily("jobkeeper_database_up", "1 when the last scrape could read the database")
        up.add_metric([], 1.0 if snap.up else 0.0)
        yield up
        if not snap.up:
            return
        window = GaugeMetricFamily(
            "jobkeeper_metrics_window_seconds", "Span of the windowed metrics (durations, results, alerts)"
        )
        window.add_metric([], snap.window)
        yield window
        yield from self._queues(snap)
        yield from self._finished(snap)
        yield from self._others(snap)

    def _queues(self, snap: Snapshot) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "jobkeeper_queue_depth",
            "Unfinished jobs per queue and state (waiting: due; scheduled: due later; processing; "
            "awaiting_dependencies: status waiting, their dependencies not all completed)",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "jobkeeper_queue_oldest_waiting_seconds",
            "How long the oldest due job of each queue has waited (0 when none waits)",
            labels=["queue"],
        )
        paused = GaugeMetricFamily("jobkeeper_queue_paused", "1 when the queue is paused", labels=["queue"])
        by_queue = {row["queue"]: row for row in snap.depth}
        for name in sorted(set(snap.queues) | set(by_queue)):
            row = by_queue.get(name, {})
            for state in ("waiting", "scheduled", "processing", "awaiting_dependencies"):
                depth.add_metric([name, state], float(row.get(state, 0)))
            oldest.add_metric([name], float(row.get("oldest_waiting_seconds", 0.0)))
            paused.add_metric([name], 1.0 if snap.queues.get(name) else 0.0)
        yield depth
        yield oldest
        yield paused

    def _finished(self, snap: Snapshot) -> Iterable[Metric]:
        results: dict[tuple[str, str], float] = defaultdict(float)
        for name in snap.queues:
            for result in RESULTS:
                results[(name, result)] = 0.0
        buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(DURATION_BOUNDS) + 1))
        sums: dict[tuple[str, str], float] = defaultdict(float)
        for row in snap.finished:
            results[(row["queue"], row["status"])] += row["jobs"]
            if row["status"] == "completed" and row["bucket"] is not None:
                key = (row["queue"], row["type"])
                buckets[key][row["bucket"]] += row["jobs"]
                sums[key] += row["seconds"]
        for row in snap.depth:
            results[(row["queue"], "retried")] += row["retried"]
        for row in snap.dead_letters:
            results[(row["queue"], "dead")] += row["recent"]

        outcome = GaugeMetricFamily(
            "jobkeeper_job_results",
            "Jobs per result within the window: completed, failed, cancelled; dead: dead-lettered; retried: "
            "back in pending after a failed attempt, not yet picked up again",
            labels=["queue", "result"],
        )
        for (name, result), count in sorted(results.items()):
            outcome.add_metric([name, result], count)
        yield outcome

        duration = HistogramMetricFamily(
            "jobkeeper_job_duration_seconds",
            "Run time (started to completed) of the jobs completed within the window",
            labels=["queue", "type"],
        )
        for key, counts in sorted(buckets.items()):
            cumulative: list[tuple[str, float]] = []
            # width_bucket index i means "from bound i on": bound k holds the values of indexes below k.
            for k, bound in enumerate(DURATION_BOUNDS):
                cumulative.append((_le(bound), float(sum(counts[: k + 1]))))
            cumulative.append(("+Inf", float(sum(counts))))
            duration.add_metric(list(key), cumulative, sum_value=sums[key])
        yield duration

    def _others(self, snap: Snapshot) -> Iterable[Metric]:
        dead = GaugeMetricFamily(
            "jobkeeper_dead_letters", "Dead letters not yet replayed, per queue", labels=["queue"]
        )
        for row in snap.dead_letters:
            dead.add_metric([row["queue"]], float(row["unreplayed"]))
        yield dead

        tokens = GaugeMetricFamily(
            "jobkeeper_rate_limiter_tokens",
            "Tokens available now in each outbound limiter",
            labels=["limiter"],
        )
        in_flight = GaugeMetricFamily(
            "jobkeeper_rate_limiter_in_flight",
            "Calls in flight through each outbound limiter",
            labels=["limiter"],
        )
        waits = CounterMetricFamily(
            "jobkeeper_rate_limiter_waits",
            "Jobs put back to pending because their outbound limiter had no token or free slot",
            labels=["limiter"],
        )
        for row in snap.limiters:
            tokens.add_metric([row["name"]], float(row["tokens"]))
            in_flight.add_metric([row["name"]], float(row["in_flight"]))
            waits.add_metric([row["name"]], float(row["waits"]))
        yield tokens
        yield in_flight
        yield waits

        raised = GaugeMetricFamily(
            "jobkeeper_alerts_raised", "Alerts raised within the window", labels=["severity"]
        )
        sent = GaugeMetricFamily(
            "jobkeeper_alert_deliveries",
            "Deliveries recorded (sent or attempted) for alerts raised within the window",
            labels=["severity"],
        )
        open_alerts = GaugeMetricFamily(
            "jobkeeper_alerts_unacknowledged", "Alerts not yet acknowledged", labels=["severity"]
        )
        for row in snap.alerts:
            raised.add_metric([row["severity"]], float(row["raised"]))
            sent.add_metric([row["severity"]], float(row["deliveries"]))
            open_alerts.add_metric([row["severity"]], float(row["unacknowledged"]))
        yield raised
        yield sent
        yield open_alerts

        workers = GaugeMetricFamily("jobkeeper_workers_live", "Workers with a recent heartbeat")
        workers.add_metric([], float(snap.live_workers))
        yield workers


PRIVATE = "_private"
"""The one label value an anonymous scrape shows for every tenant-private queue and job type."""


@dataclass(frozen=True, slots=True)
class SharedNames:
    """The names anyone may see: shared queues, the job types registered on them, shared limiters."""

    queues: frozenset[str]
    job_types: frozenset[str]
    limiters: frozenset[str]


def anonymous(snap: Snapshot, shared: SharedNames) -> Snapshot:
    """`snap` as an anonymous scraper may see it: tenant-private queues and job types summed into one
    `_private` series, private limiters left out. Totals are unchanged; no tenant's own name remains."""

    def queue(name: str) -> str:
        return name if name in shared.queues else PRIVATE

    def job_type(name: str) -> str:
        return name if name in shared.job_types else PRIVATE

    queues: dict[str, bool] = {}
    for name, paused in snap.queues.items():
        # `_private` counts as paused only when every private queue is
        queues[queue(name)] = paused and queues.get(queue(name), True)
    depth: dict[str, dict[str, Any]] = {}
    for row in snap.depth:
        merged = depth.setdefault(queue(row["queue"]), {"queue": queue(row["queue"])})
        for key, value in row.items():
            if key == "oldest_waiting_seconds":
                merged[key] = max(merged.get(key, 0.0), value)
            elif key != "queue":
                merged[key] = merged.get(key, 0) + value
    dead: dict[str, dict[str, Any]] = {}
    for row in snap.dead_letters:
        name = queue(row["queue"])
        merged = dead.setdefault(name, {"queue": name, "unreplayed": 0, "recent": 0})
        merged["unreplayed"] += row["unreplayed"]
        merged["recent"] += row["recent"]
    # finished rows are summed by (queue, type) when collected, so renaming them is enough
    finished = [row | {"queue": queue(row["queue"]), "type": job_type(row["type"])} for row in snap.finished]
    return Snapshot(
        up=snap.up,
        window=snap.window,
        queues=queues,
        depth=list(depth.values()),
        finished=finished,
        dead_letters=list(dead.values()),
        limiters=[row for row in snap.limiters if row["name"] in shared.limiters],
        alerts=snap.alerts,
        live_workers=snap.live_workers,
    )


def _le(bound: float) -> str:
    return repr(float(bound))


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_requests = Counter(
            "jobkeeper_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "jobkeeper_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=HTTP_BOUNDS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "jobkeeper_api_rate_limited",
            "Job-creation requests refused by the per-principal rate limit",
            ["route"],
            registry=self.registry,
        )
        self.database = DatabaseCollector()
        self.registry.register(self.database)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template (`/api/v1/queue/jobs/{job_id}`), never by
    its raw path, so ids do not explode the label space."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", "GET"))
            if method not in HTTP_METHODS:  # a client chooses the method: keep the label space bounded
                method = "OTHER"
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_duration.labels(method, template).observe(time.perf_counter() - started)
