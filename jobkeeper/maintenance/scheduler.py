"""The cron scheduler: enqueues each schedule's job once per slot (runs on the maintenance leader).

Each tick, in one transaction: lock the due schedules (SKIP LOCKED), work out which slots to fire by the
schedule's missed-run and overlap policies, enqueue them in one statement with the idempotency key
`schedule:<id>:<slot>` (so a slot fires exactly once even if two leaders overlap), and advance the
schedules in one statement.

Policies, with `grace` (default 60 s) as the lateness still counted as on time:
- `skip`: late slots are not run; each is counted in `missed_runs`;
- `run_once`: late slots are counted, and one catch-up run is made for the latest of them;
- `catch_up`: every late slot within `catch_up_window_seconds` runs (at most 100 per tick, latest first).
Overlap `skip`: while the previous run is pending or processing, due slots are counted as missed instead.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from jobkeeper import cron
from jobkeeper.catalog import load_catalog
from jobkeeper.config import Settings
from jobkeeper.enqueue import prepare
from jobkeeper.errors import InvalidJobError
from jobkeeper.store.queries import query

log = logging.getLogger(__name__)

MAX_CATCH_UP = 100
SCHEDULE_KEY_TTL = 7 * 86400.0


@dataclass(slots=True)
class TickResult:
    fired: int = 0
    missed: int = 0
    deactivated: int = 0
    job_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plan:
    fire: list[datetime]
    missed: int
    next_run_at: datetime


def plan(row: dict[str, Any], now: datetime, grace: float) -> Plan:
    """Which slots of a due schedule to fire now, how many were missed, and its next slot."""
    expression, zone = row["cron"], row["timezone"]
    first: datetime | None = row["next_run_at"]
    following = cron.next_fire(expression, zone, now)
    if first is None:  # new schedule: its first slot is the next one
        return Plan([], 0, following)
    slots = [first, *cron.fires_between(expression, zone, first, now)]
    on_time = [s for s in slots if (now - s).total_seconds() <= grace]
    late = [s for s in slots if (now - s).total_seconds() > grace]
    policy = row["missed_policy"]
    if policy == "run_once":
        catch_up = late[-1:]
    elif policy == "catch_up":
        window = timedelta(seconds=row["catch_up_window_seconds"])
        catch_up = [s for s in late if now - s <= window][-MAX_CATCH_UP:]
    else:
        catch_up = []
    fire = [*catch_up, *on_time]
    missed = len(late)
    if row["overlap_policy"] == "skip":
        if row["last_job_status"] in ("pending", "processing"):
            return Plan([], len(slots), following)
        fire = fire[-1:]
    return Plan(fire, missed, following)


class Scheduler:
    """Maintenance task: fire due cron schedules."""

    name = "scheduler"

    def __init__(
        self, settings: Settings, *, interval: float = 1.0, grace: float = 60.0, batch: int = 100
    ) -> None:
        self.settings = settings
        self.interval = interval
        self.grace = grace
        self.batch = batch

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        await self.tick(pool)

    async def tick(self, pool: AsyncConnectionPool[Any], *, now: datetime | None = None) -> TickResult:
        result = TickResult()
        async with pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query("due_schedules"), {"now": now, "limit": self.batch})
            due = await cur.fetchall()
            if not due:
                return result
            await cur.execute(query("clock_now"), {"now": now})
            clock = await cur.fetchone()
            assert clock is not None
            await self._fire(conn, due, clock["now"], result, explicit_now=now)
        if result.fired or result.missed:
            log.info("scheduler fired %d runs, %d slots missed", result.fired, result.missed)
        return result

    async def _fire(
        self,
        conn: psycopg.AsyncConnection[Any],
        due: list[dict[str, Any]],
        now: datetime,
        result: TickResult,
        *,
        explicit_now: datetime | None,
    ) -> None:
        catalog = await load_catalog(conn)
        items: list[dict[str, Any]] = []
        owners: list[int] = []
        updates: dict[str, list[Any]] = {
            k: [] for k in ("ids", "next_run_ats", "last_run_ats", "last_job_ids", "missed", "keep_active")
        }
        plans: list[Plan | None] = []
        for index, row in enumerate(due):
            try:
                p = plan(row, now, self.grace)
            except (InvalidJobError, ValueError, KeyError) as exc:
                log.error("schedule %s (%s) is invalid and was deactivated: %s", row["id"], row["name"], exc)
                plans.append(None)
                continue
            plans.append(p)
            for slot in p.fire:
                items.append(
                    {
                        "type": row["job_type"],
                        "payload": row["payload"],
                        "queue": row["queue"],
                        "priority": row["priority"],
                        "tenant_id": row["tenant_id"],
                        "run_at": slot,
                        "idempotency_key": f"schedule:{row['id']}:{slot.isoformat()}",
                    }
                )
                owners.append(index)
        job_ids: list[uuid.UUID | None] = [None] * len(due)
        if items:
            try:
                # Type and payload were checked when the schedule was created; one schedule made before
                # those checks must not stop every other schedule's run.
                batch = prepare(items, catalog, self.settings, validate=False)
            except InvalidJobError as exc:
                log.error("scheduled jobs could not be enqueued: %s", exc)
                batch = None
            if batch is not None:
                batch.key_ttls = [SCHEDULE_KEY_TTL] * len(batch)
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(query("insert_jobs"), batch.params(own_transaction=False, now=explicit_now))
                rows = await cur.fetchall()
                for owner, row in zip(owners, rows, strict=True):
                    job_ids[owner] = row["resolved_id"]
                result.job_ids.extend(row["resolved_id"] for row in rows)
                result.fired += len(rows)
        for index, row in enumerate(due):
            planned = plans[index]
            updates["ids"].append(row["id"])
            updates["next_run_ats"].append(planned.next_run_at if planned else None)
            updates["last_run_ats"].append(planned.fire[-1] if planned and planned.fire else None)
            updates["last_job_ids"].append(job_ids[index])
            updates["missed"].append(planned.missed if planned else 0)
            updates["keep_active"].append(planned is not None)
            result.missed += planned.missed if planned else 0
            result.deactivated += planned is None
        await conn.execute(query("advance_schedules"), updates)
