from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from jobkeeper import DEV_TENANT_ID, Settings
from jobkeeper.maintenance.scheduler import Scheduler

T = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


async def _schedule(
    pool: AsyncConnectionPool[Any],
    cron: str = "*/5 * * * *",
    *,
    timezone: str = "UTC",
    next_run_at: datetime | None = None,
    missed_policy: str = "skip",
    overlap_policy: str = "allow",
    window: float = 3600,
) -> uuid.UUID:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO jobkeeper.schedules (tenant_id, name, cron, timezone, queue, job_type, payload,"
            " next_run_at, missed_policy, overlap_policy, catch_up_window_seconds)"
            " VALUES (%s, %s, %s, %s, 'background', 'generate-report', '{}', %s, %s, %s, %s)"
            " RETURNING id",
            (
                DEV_TENANT_ID,
                f"s-{uuid.uuid4()}",
                cron,
                timezone,
                next_run_at,
                missed_policy,
                overlap_policy,
                window,
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))


async def _state(pool: AsyncConnectionPool[Any], schedule: uuid.UUID) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        await cur.execute("SELECT * FROM jobkeeper.schedules WHERE id = %s", (schedule,))
        row: dict[str, Any] | None = await cur.fetchone()
        assert row is not None
        return row


async def _jobs(pool: AsyncConnectionPool[Any]) -> list[datetime]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT scheduled_at FROM jobkeeper.jobs ORDER BY scheduled_at")
        return [row[0] for row in await cur.fetchall()]


async def test_a_new_schedule_waits_for_its_first_slot_then_fires_once_per_slot(
    pool: AsyncConnectionPool[Any], settings: Settings
) -> None:
    scheduler = Scheduler(settings)
    schedule = await _schedule(pool)
    assert (await scheduler.tick(pool, now=T + timedelta(minutes=1))).fired == 0
    assert (await _state(pool, schedule))["next_run_at"] == T + timedelta(minutes=5)

    fired = await scheduler.tick(pool, now=T + timedelta(minutes=5, seconds=1))
    assert fired.fired == 1
    assert await _jobs(pool) == [T + timedelta(minutes=5)]
    state = await _state(pool, schedule)
    assert state["last_run_at"] == T + timedelta(minutes=5)
    assert state["next_run_at"] == T + timedelta(minutes=10)
    assert state["last_job_id"] == fired.job_ids[0]
    assert (await scheduler.tick(pool, now=T + timedelta(minutes=6))).fired == 0


@pytest.mark.parametrize(
    ("policy", "window", "fired", "missed"),
    [
        ("skip", 3600, 1, 12),
        ("run_once", 3600, 2, 12),
        ("catch_up", 30 * 60, 6, 12),
        ("catch_up", 3600, 12, 12),
    ],
)
async def test_missed_run_policies(
    pool: AsyncConnectionPool[Any], settings: Settings, policy: str, window: float, fired: int, missed: int
) -> None:
    # The leader was away for an hour: 12 slots passed unrun; the slot at T is 10 s late (on time).
    schedule = await _schedule(pool, next_run_at=T - timedelta(hours=1), missed_policy=policy, window=window)
    result = await Scheduler(settings).tick(pool, now=T + timedelta(seconds=10))
    assert (result.fired, result.missed) == (fired, missed)
    jobs = await _jobs(pool)
    assert jobs[-1] == T
    if policy == "run_once":
        assert jobs == [T - timedelta(minutes=5), T]
    state = await _state(pool, schedule)
    assert state["missed_runs"] == missed
    assert state["next_run_at"] == T + timedelta(minutes=5)


async def test_two_leaders_never_fire_a_slot_twice(
    pool: AsyncConnectionPool[Any], settings: Settings
) -> None:
    schedule = await _schedule(pool, next_run_at=T)
    now = T + timedelta(seconds=2)
    results = await asyncio.gather(*(Scheduler(settings).tick(pool, now=now) for _ in range(4)))
    assert sum(r.fired for r in results) == 1
    # A leader working from a stale view (its lease expired mid-tick) fires the same slot again: the
    # per-slot idempotency key returns the existing job instead of creating one.
    async with pool.connection() as conn:
        await conn.execute("UPDATE jobkeeper.schedules SET next_run_at = %s WHERE id = %s", (T, schedule))
    again = await Scheduler(settings).tick(pool, now=now)
    (original,) = [job_id for r in results for job_id in r.job_ids]
    assert again.job_ids == [original]
    assert len(await _jobs(pool)) == 1


async def test_overlap_skip_waits_for_the_previous_run(
    pool: AsyncConnectionPool[Any], settings: Settings
) -> None:
    schedule = await _schedule(pool, next_run_at=T, overlap_policy="skip")
    scheduler = Scheduler(settings)
    assert (await scheduler.tick(pool, now=T + timedelta(seconds=1))).fired == 1
    skipped = await scheduler.tick(pool, now=T + timedelta(minutes=5, seconds=1))
    assert (skipped.fired, skipped.missed) == (0, 1)
    async with pool.connection() as conn:
        await conn.execute("UPDATE jobkeeper.jobs SET status = 'completed'")
    assert (await scheduler.tick(pool, now=T + timedelta(minutes=10, seconds=1))).fired == 1
    assert (await _state(pool, schedule))["missed_runs"] == 1


async def test_fires_at_the_right_instants_across_a_dst_change(
    pool: AsyncConnectionPool[Any], settings: Settings
) -> None:
    night = datetime(2027, 3, 13, 12, tzinfo=UTC)  # the day before New York springs forward
    schedule = await _schedule(pool, "30 2 * * *", timezone="America/New_York")
    scheduler = Scheduler(settings)
    await scheduler.tick(pool, now=night)  # computes the first slot
    assert (await _state(pool, schedule))["next_run_at"] == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    # A tick every five minutes through both nights (05:00-09:00 UTC).
    for day in (14, 15):
        for minute in range(0, 4 * 60, 5):
            await scheduler.tick(pool, now=datetime(2027, 3, day, 5, tzinfo=UTC) + timedelta(minutes=minute))
    # 02:30 EST on the 14th does not exist: it ran at 03:30 EDT (07:30 UTC); the 15th at 02:30 EDT.
    assert await _jobs(pool) == [
        datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        datetime(2027, 3, 15, 6, 30, tzinfo=UTC),
    ]


async def test_an_invalid_schedule_is_deactivated(pool: AsyncConnectionPool[Any], settings: Settings) -> None:
    schedule = await _schedule(pool, "0 9 * * *", timezone="Mars/Olympus", next_run_at=T)
    result = await Scheduler(settings).tick(pool, now=T + timedelta(seconds=1))
    assert (result.fired, result.deactivated) == (0, 1)
    assert not (await _state(pool, schedule))["active"]
