"""The cron scheduler: enqueues each schedule's job once per slot (runs on the maintenance leader).

Each tick is bounded and fair, and never holds a lock or a transaction while it computes:
1. read the due schedules, round-robin between tenants, at most `max_fires` of them (no lock);
2. work out which slots to fire by the missed-run and overlap policies, in a thread (croniter is pure
   Python, about 50 us a slot: hundreds of schedules must not stall the worker's event loop);
3. spend the tick's budget of `max_fires` jobs in that round-robin order (planning stops when it is
   spent), then take each tenant's jobs from its token bucket `schedules:jobs` (the API's limiter: the
   same statement, rate and burst);
4. in one short transaction, lock the schedules still unchanged (SKIP LOCKED), enqueue their jobs in one
   statement with the idempotency key `schedule:<id>:<slot>` (a slot fires exactly once even if two
   leaders overlap), and advance them in one statement.
A schedule left out by the budget or by its tenant's rate is deferred, not advanced: it stays due and is
planned again next tick, where slots late by more than `grace` follow its missed-run policy and are
counted in `missed_runs`. A slot is never dropped without being counted.

Policies, with `grace` (default 60 s) as the lateness still counted as on time:
- `skip`: late slots are not run; each is counted in `missed_runs`;
- `run_once`: late slots are counted, and one catch-up run is made for the latest of them;
- `catch_up`: every late slot within `catch_up_window_seconds` runs (at most 100 per tick, latest first).
At most `max_fires` slots of one schedule fire in a tick (the latest); the earlier ones count as missed.
Overlap `skip`: while the previous run is pending or processing, due slots are counted as missed instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from jobkeeper import cron
from jobkeeper.catalog import Catalog, load_catalog
from jobkeeper.config import Settings
from jobkeeper.enqueue import prepare
from jobkeeper.errors import InvalidJobError
from jobkeeper.store import limiters, schedules
from jobkeeper.store.queries import query
from jobkeeper.store.run import run

log = logging.getLogger(__name__)

MAX_CATCH_UP = 100
SCHEDULE_KEY_TTL = 7 * 86400.0
BUCKET_KEY = "schedules:jobs"
"""The token bucket (jobkeeper.rate_limits) each tenant's scheduled jobs are taken from."""


@dataclass(slots=True)
class TickResult:
    fired: int = 0
    missed: int = 0
    deactivated: int = 0
    deferred: int = 0
    """Due schedules left due for a later tick: over the tick's budget or their tenant's rate."""
    seconds: float = 0.0
    job_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plan:
    fire: list[datetime]
    missed: int
    next_run_at: datetime


def plan(row: dict[str, Any], now: datetime, grace: float, most: int = MAX_CATCH_UP) -> Plan:
    """Which slots of a due schedule to fire now (at most `most`), how many were missed, and its next
    slot."""
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
    if len(fire) > most:
        missed += len([s for s in fire[:-most] if s in on_time])  # late ones are counted already
        fire = fire[-most:]
    return Plan(fire, missed, following)


@dataclass(slots=True)
class _Due:
    """A due schedule as read, its plan (None: invalid), and its jobs' enqueue items."""

    row: dict[str, Any]
    plan: Plan | None
    items: list[dict[str, Any]]


class Scheduler:
    """Maintenance task: fire due cron schedules."""

    name = "scheduler"

    def __init__(
        self,
        settings: Settings,
        *,
        interval: float = 1.0,
        grace: float = 60.0,
        max_fires: int | None = None,
    ) -> None:
        self.settings = settings
        self.interval = interval
        self.grace = grace
        self.max_fires = max_fires if max_fires is not None else settings.scheduler_max_fires

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        await self.tick(pool)

    async def tick(self, pool: AsyncConnectionPool[Any], *, now: datetime | None = None) -> TickResult:
        started = time.perf_counter()
        result = TickResult()
        async with pool.connection() as conn:
            rows = await run(conn, schedules.due(now=now, limit=self.max_fires, bucket_key=BUCKET_KEY))
            if not rows:
                return result
            catalog = await load_catalog(conn)
        chosen = await asyncio.to_thread(self._plan, rows, rows[0]["now"], catalog, result)
        spent = await self._take_tokens(pool, chosen, result)
        await self._write(pool, chosen, spent, result, explicit_now=now)
        result.seconds = time.perf_counter() - started
        if result.fired or result.missed or result.deferred:
            log.info(
                "scheduler fired %d runs, %d slots missed, %d schedules deferred (%.3f s)",
                result.fired,
                result.missed,
                result.deferred,
                result.seconds,
            )
        return result

    def _plan(
        self, rows: list[dict[str, Any]], now: datetime, catalog: Catalog, result: TickResult
    ) -> list[_Due]:
        """Plan the rows in their round-robin order until the tick's budget of jobs is spent; the
        schedules whose jobs do not fit are deferred. Runs in a thread: cron arithmetic is CPU work."""
        budget = self.max_fires
        chosen: list[_Due] = []
        full: set[uuid.UUID] = set()
        for row in rows:
            if budget == 0 or row["tenant_id"] in full:
                result.deferred += 1
                continue
            entry = self._plan_one(row, now, catalog)
            if len(entry.items) > budget:
                # Its tenant's later schedules are likely as large: leave them to the next tick
                # rather than plan each only to defer it.
                full.add(row["tenant_id"])
                result.deferred += 1
                continue
            budget -= len(entry.items)
            chosen.append(entry)
        return chosen

    def _plan_one(self, row: dict[str, Any], now: datetime, catalog: Catalog) -> _Due:
        try:
            p = plan(row, now, self.grace, self.max_fires)
        except (InvalidJobError, ValueError, KeyError) as exc:
            log.error("schedule %s (%s) is invalid and was deactivated: %s", row["id"], row["name"], exc)
            return _Due(row, None, [])
        items = [
            {
                "type": row["job_type"],
                "payload": row["payload"],
                "queue": row["queue"],
                "priority": row["priority"],
                "tenant_id": row["tenant_id"],
                "run_at": slot,
                "idempotency_key": f"schedule:{row['id']}:{slot.isoformat()}",
            }
            for slot in p.fire
        ]
        if items:
            try:
                prepare(items[:1], catalog, self.settings)  # the items differ only by slot and key
            except InvalidJobError as exc:
                # This schedule's slots are counted as missed; other schedules still fire.
                log.error("schedule %s (%s) could not enqueue its job: %s", row["id"], row["name"], exc)
                return _Due(row, Plan([], p.missed + len(p.fire), p.next_run_at), [])
        return _Due(row, p, items)

    async def _take_tokens(
        self, pool: AsyncConnectionPool[Any], chosen: list[_Due], result: TickResult
    ) -> dict[uuid.UUID, int]:
        """Take each tenant's jobs from its bucket; drop (defer) the schedules its tokens do not cover.
        Returns the tokens kept per tenant."""
        by_tenant: dict[uuid.UUID, list[_Due]] = defaultdict(list)
        for entry in chosen:
            if entry.items:
                by_tenant[entry.row["tenant_id"]].append(entry)
        spent: dict[uuid.UUID, int] = {}
        dropped: set[int] = set()
        async with pool.connection() as conn:
            for tenant, entries in by_tenant.items():
                granted = await self._take(conn, tenant, sum(len(e.items) for e in entries))
                used = 0
                for entry in entries:
                    if used + len(entry.items) <= granted:
                        used += len(entry.items)
                    else:
                        dropped.add(id(entry))
                        result.deferred += 1
                if granted > used:
                    await self._give_back(conn, tenant, granted - used)
                spent[tenant] = used
        chosen[:] = [entry for entry in chosen if id(entry) not in dropped]
        return spent

    async def _take(self, conn: psycopg.AsyncConnection[Any], tenant: uuid.UUID, cost: int) -> int:
        """Take `cost` tokens, or as many whole tokens as the bucket holds: how many were taken."""
        return await run(
            conn,
            limiters.take_up_to(
                tenant_id=tenant,
                key=BUCKET_KEY,
                capacity=float(self.settings.api_rate_burst),
                refill_per_second=self.settings.api_rate_per_second,
                cost=cost,
            ),
        )

    async def _give_back(self, conn: psycopg.AsyncConnection[Any], tenant: uuid.UUID, tokens: int) -> None:
        await run(conn, limiters.give_back_tokens(tenant_id=tenant, key=BUCKET_KEY, cost=float(tokens)))

    async def _write(
        self,
        pool: AsyncConnectionPool[Any],
        chosen: list[_Due],
        spent: dict[uuid.UUID, int],
        result: TickResult,
        *,
        explicit_now: datetime | None,
    ) -> None:
        """One short transaction: lock what is unchanged, enqueue its jobs, advance it."""
        if not chosen:
            return
        unlocked: dict[uuid.UUID, int] = defaultdict(int)
        async with pool.connection() as conn:
            async with conn.transaction():
                locked = await run(
                    conn,
                    schedules.lock_due([e.row["id"] for e in chosen], [e.row["updated_at"] for e in chosen]),
                )
                for entry in chosen:
                    if entry.row["id"] not in locked:
                        unlocked[entry.row["tenant_id"]] += len(entry.items)
                writing = [entry for entry in chosen if entry.row["id"] in locked]
                job_ids = await self._enqueue(conn, writing, result, explicit_now)
                await run(conn, schedules.advance(_advances(writing, job_ids, result)))
            # Tokens taken for schedules changed or deleted meanwhile go back.
            for tenant, tokens in unlocked.items():
                if tokens and spent.get(tenant):
                    await self._give_back(conn, tenant, min(tokens, spent[tenant]))

    async def _enqueue(
        self,
        conn: psycopg.AsyncConnection[Any],
        writing: list[_Due],
        result: TickResult,
        explicit_now: datetime | None,
    ) -> dict[uuid.UUID, uuid.UUID]:
        """Insert the jobs of `writing` in one statement; the last job id of each schedule."""
        items = [item for entry in writing for item in entry.items]
        if not items:
            return {}
        owners = [entry.row["id"] for entry in writing for _ in entry.items]
        # Type and payload were checked when the schedule was created; one schedule made before those
        # checks must not stop every other schedule's run.
        batch = prepare(items, await load_catalog(conn), self.settings, validate=False)
        batch.key_ttls = [SCHEDULE_KEY_TTL] * len(batch)
        # Until the store's `jobs.insert_many` exists (issue 16, WP1), the scheduler inserts by name.
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("insert_jobs"), batch.params(own_transaction=False, now=explicit_now))
        rows = await cur.fetchall()
        last: dict[uuid.UUID, uuid.UUID] = {}
        for owner, row in zip(owners, rows, strict=True):
            last[owner] = row["resolved_id"]
        result.job_ids.extend(row["resolved_id"] for row in rows)
        result.fired += len(rows)
        return last


def _advances(
    writing: list[_Due], job_ids: dict[uuid.UUID, uuid.UUID], result: TickResult
) -> dict[str, list[Any]]:
    """The columns of `schedules.advance`: each schedule's next slot, last run and missed count; an
    invalid schedule is deactivated."""
    updates: dict[str, list[Any]] = {
        k: [] for k in ("ids", "next_run_ats", "last_run_ats", "last_job_ids", "missed", "keep_active")
    }
    for entry in writing:
        planned = entry.plan
        updates["ids"].append(entry.row["id"])
        updates["next_run_ats"].append(planned.next_run_at if planned else None)
        updates["last_run_ats"].append(planned.fire[-1] if planned and planned.fire else None)
        updates["last_job_ids"].append(job_ids.get(entry.row["id"]))
        updates["missed"].append(planned.missed if planned else 0)
        updates["keep_active"].append(planned is not None)
        result.missed += planned.missed if planned else 0
        result.deactivated += planned is None
    return updates
