"""Alert checks (leader task): the seeds' thresholds per queue, dead money jobs, missing workers.

Rules, each with a severity and a cooldown per rule and queue (an alert repeats at most once per cooldown):
- `queue_depth`: ready jobs above the queue's limit (money 50, communication 5,000, background 50,000);
- `queue_age`: oldest ready job waiting longer than the limit (money 10 min);
- `failure_rate`: failed / finished over the last 5 minutes above 10 % (with at least 20 finished);
- `money_dead_letter`: any job of a durable-tier queue dead-lettered since the last check (critical, no
  cooldown: every new batch of dead money jobs alerts);
- `no_workers`: a queue with ready jobs and no live worker serving it;
- `no_handler`: ready jobs of a type that no live worker has a handler for (they are never claimed).
New alerts are stored in `alert_history` and handed to the channels by `deliver_alerts`, which never
raises: a failing channel is logged and recorded, and `AlertChecker` delivers outside the check's own
transaction so a slow channel cannot hold the check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from jobkeeper.store import alerts as alert_ops
from jobkeeper.store.queries import query
from jobkeeper.store.run import AsyncDb, run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueueThresholds:
    max_depth: int | None = None
    max_age_seconds: float | None = None
    max_failure_rate: float | None = 0.10


DEFAULT_THRESHOLDS = {
    "money": QueueThresholds(max_depth=50, max_age_seconds=600),
    "communication": QueueThresholds(max_depth=5000),
    "background": QueueThresholds(max_depth=50_000),
}


@dataclass(frozen=True, slots=True)
class AlertConfig:
    thresholds: dict[str, QueueThresholds] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    default: QueueThresholds = QueueThresholds()
    cooldown_seconds: float = 900.0
    failure_window_seconds: float = 300.0
    failure_min_sample: int = 20
    worker_lease_seconds: float = 30.0

    def for_queue(self, queue: str) -> QueueThresholds:
        return self.thresholds.get(queue, self.default)


@dataclass(frozen=True, slots=True)
class Alert:
    id: Any
    rule: str
    queue: str | None
    severity: str
    message: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    rule: str
    queue: str | None
    severity: str
    message: str
    details: dict[str, Any]
    cooldown: float


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, alert: Alert) -> None: ...


def evaluate(stats: Sequence[dict[str, Any]], config: AlertConfig) -> list[Candidate]:
    """The alerts that the queue statistics call for (before cooldowns)."""
    found: list[Candidate] = []
    cooldown = config.cooldown_seconds
    for row in stats:
        queue, limits = row["queue"], config.for_queue(row["queue"])
        severity = "critical" if row["tier"] == "durable" else "warning"
        depth, oldest = row["depth"], row["oldest_seconds"]
        if limits.max_depth is not None and depth > limits.max_depth:
            found.append(
                Candidate(
                    "queue_depth",
                    queue,
                    severity,
                    f"{queue}: {depth} jobs waiting (limit {limits.max_depth})",
                    {"depth": depth, "limit": limits.max_depth},
                    cooldown,
                )
            )
        if limits.max_age_seconds is not None and oldest is not None and oldest > limits.max_age_seconds:
            found.append(
                Candidate(
                    "queue_age",
                    queue,
                    severity,
                    f"{queue}: oldest job waiting {oldest:.0f} s (limit {limits.max_age_seconds:.0f} s)",
                    {"oldest_seconds": float(oldest), "limit": limits.max_age_seconds},
                    cooldown,
                )
            )
        finished = row["completed"] + row["failed"]
        if limits.max_failure_rate is not None and finished >= config.failure_min_sample:
            rate = row["failed"] / finished
            if rate > limits.max_failure_rate:
                found.append(
                    Candidate(
                        "failure_rate",
                        queue,
                        severity,
                        f"{queue}: {rate:.0%} of {finished} jobs failed in the last "
                        f"{config.failure_window_seconds:.0f} s (limit {limits.max_failure_rate:.0%})",
                        {"failure_rate": rate, "finished": finished},
                        cooldown,
                    )
                )
        if depth > 0 and row["live_workers"] == 0 and not row["paused"]:
            found.append(
                Candidate(
                    "no_workers",
                    queue,
                    "critical" if severity == "critical" else "warning",
                    f"{queue}: {depth} jobs waiting and no live worker serves the queue",
                    {"depth": depth},
                    cooldown,
                )
            )
    return found


async def check(
    pool: AsyncConnectionPool[Any], config: AlertConfig = AlertConfig(), *, now: datetime | None = None
) -> list[Alert]:
    """Evaluate every rule once and store the alerts that are not in their cooldown; returns them."""
    async with pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("alert_queue_stats"),
            {
                "now": now,
                "rate_window": config.failure_window_seconds,
                "worker_lease": config.worker_lease_seconds,
            },
        )
        candidates = evaluate(await cur.fetchall(), config)
        await cur.execute(
            query("unhandled_job_types"), {"now": now, "worker_lease": config.worker_lease_seconds}
        )
        unhandled: dict[str, list[dict[str, Any]]] = {}
        for row in await cur.fetchall():
            unhandled.setdefault(row["queue"], []).append({"type": row["type"], "waiting": row["waiting"]})
        for queue, types in unhandled.items():
            names = ", ".join(f"{t['type']} ({t['waiting']})" for t in types)
            candidates.append(
                Candidate(
                    "no_handler",
                    queue,
                    "warning",
                    f"{queue}: jobs wait that no live worker can run, by type (waiting): {names}",
                    {"types": types},
                    config.cooldown_seconds,
                )
            )
        await cur.execute(query("dead_letter_watermark"))
        last = await cur.fetchone()
        since = last["latest"] if last and last["latest"] else "-infinity"
        await cur.execute(query("new_dead_letters"), {"since": since})
        for row in await cur.fetchall():
            candidates.append(
                Candidate(
                    "money_dead_letter",
                    row["queue"],
                    "critical",
                    f"{row['queue']}: {row['dead']} money job(s) failed for good and were dead-lettered",
                    {
                        "dead": row["dead"],
                        "job_ids": [str(i) for i in row["job_ids"]],
                        "latest": row["latest"].isoformat(),
                    },
                    0.0,
                )
            )
        if not candidates:
            return []
        inserted = await run(
            conn,
            alert_ops.insert_many(
                rules=[c.rule for c in candidates],
                queues=[c.queue for c in candidates],
                severities=[c.severity for c in candidates],
                messages=[c.message for c in candidates],
                details=[c.details for c in candidates],
                cooldowns=[c.cooldown for c in candidates],
                now=now,
            ),
        )
        alerts = [Alert(**row) for row in inserted]
    for alert in alerts:
        log.warning("alert %s [%s] %s", alert.rule, alert.severity, alert.message)
    return alerts


async def deliver_alerts(
    pool: AsyncConnectionPool[Any],
    alerts: Sequence[Alert],
    channels: Sequence[Channel],
    *,
    attempts: int = 3,
    backoff: float = 1.0,
) -> int:
    """Send each alert to each channel, retrying a failing send (`attempts` tries, backoff doubling), and
    record every outcome on the alert. Never raises; returns how many sends failed for good."""
    failures = 0
    db = AsyncDb(pool)
    for alert in alerts:
        for channel in channels:
            error: str | None = None
            for attempt in range(1, attempts + 1):
                try:
                    await channel.send(alert)
                    error = None
                    break
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "alert %s to %s failed (try %d/%d): %s",
                        alert.id,
                        channel.name,
                        attempt,
                        attempts,
                        error,
                    )
                    if attempt < attempts:
                        await asyncio.sleep(backoff * 2 ** (attempt - 1))
            if error is not None:
                failures += 1
                log.error("alert %s could not be sent to %s: %s", alert.id, channel.name, error)
            await db.run(
                alert_ops.record_delivery(alert.id, channel=channel.name, ok=error is None, error=error)
            )
    return failures


class AlertChecker:
    """Maintenance task: check every few seconds; deliver in the background so that a slow or failing
    channel never delays the next check or the other maintenance tasks."""

    name = "alerts"

    def __init__(
        self, channels: Sequence[Channel], config: AlertConfig = AlertConfig(), *, interval: float = 5.0
    ) -> None:
        self.channels = list(channels)
        self.config = config
        self.interval = interval
        self._deliveries: set[asyncio.Task[int]] = set()

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        alerts = await check(pool, self.config)
        if alerts and self.channels:
            task = asyncio.create_task(deliver_alerts(pool, alerts, self.channels), name="alert-delivery")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def drain(self) -> None:
        """Wait for deliveries in flight (on shutdown)."""
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
