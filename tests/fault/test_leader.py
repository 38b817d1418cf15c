"""Scenario 7: the maintenance leader is SIGKILLed while it holds the lease.

Two workers compete for the lease (3 s here). A cron schedule fires every second (six-field expression)
and the leader also runs slow jobs when it dies. After each kill the other worker must take the lease
within about one lease, fire every slot exactly once (late slots are within the scheduler's grace, so
none is missed either) and rescue the dead leader's jobs, which then complete with their effect once.
"""

from __future__ import annotations

import uuid

import pytest

from jobkeeper import DEV_TENANT_ID, Client
from tests.fault.harness import (
    Conn,
    Fleet,
    Summary,
    WorkerProcess,
    db_now,
    job,
    pause,
    scalar,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants
from tests.support import eventually

VARIANTS = [
    pytest.param(2, id="short"),
    pytest.param(8, id="slow", marks=pytest.mark.slow),
]
WORKER = ("--concurrency", "6", "--batch-size", "6")
SLOW_JOBS = 8


async def _leader(db: Conn) -> uuid.UUID | None:
    cur = await db.execute(
        "SELECT holder FROM jobkeeper.leases WHERE name = 'maintenance' AND expires_at > now()"
    )
    row = await cur.fetchone()
    return None if row is None else row[0]


async def _schedule(db: Conn) -> uuid.UUID:
    cur = await db.execute(
        "INSERT INTO jobkeeper.schedules (tenant_id, name, cron, queue, job_type, payload)"
        " VALUES (%s, 'every-second', '* * * * * *', 'money', 'fault-tick', '{}') RETURNING id",
        (DEV_TENANT_ID,),
    )
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kills", VARIANTS)
async def test_a_killed_leader_is_replaced_schedules_fire_once_per_slot_and_its_jobs_are_rescued(
    db: Conn, fleet: Fleet, producer_client: Client, summary: Summary, kills: int
) -> None:
    workers = await fleet.start_many(db, 2, *WORKER)

    async def has_leader() -> bool:
        return await _leader(db) is not None

    await eventually(has_leader, timeout=15, what="a leader")
    schedule = await _schedule(db)

    async def firing() -> bool:
        return int(await scalar(db, "SELECT count(*) FROM jobkeeper.jobs WHERE type = 'fault-tick'")) >= 2

    await eventually(firing, timeout=15, what="the schedule to fire under the first leader")
    acknowledged: list[uuid.UUID] = []
    failovers: list[float] = []
    held_by_dead: set[uuid.UUID] = set()
    for round_ in range(kills):
        slow = await producer_client.enqueue_many(
            [job("money", f"leader-{round_}-{n}", work=4.0, max_attempts=25) for n in range(SLOW_JOBS)]
        )
        acknowledged.extend(j.id for j in slow)
        leader_id = await _leader(db)
        victim = _by_id(workers, leader_id)
        held: list[uuid.UUID] = []

        async def leader_runs_jobs(leader_id: uuid.UUID | None = leader_id) -> bool:
            nonlocal held
            cur = await db.execute(
                "SELECT id FROM jobkeeper.jobs WHERE status = 'processing' AND worker_id = %s"
                " AND type = 'fault-money'",
                (leader_id,),
            )
            held = [row[0] for row in await cur.fetchall()]
            return bool(held)

        await eventually(leader_runs_jobs, timeout=15, what="the leader to run slow jobs")
        victim.kill()
        killed_at = await db_now(db)
        await leader_runs_jobs()  # what died with it (a job may have completed just before the kill)
        held_by_dead.update(held)  # a job rescued once may die with the next leader too
        fleet.restart(victim)  # competes for the lease again once it has started

        async def new_leader(leader_id: uuid.UUID | None = leader_id) -> bool:
            holder = await _leader(db)
            return holder is not None and holder != leader_id

        await eventually(new_leader, timeout=15, what="another worker to take the lease")
        failovers.append((await db_now(db) - killed_at).total_seconds())
        await victim.registered(db)
    await pause(1.0)  # a few more slots under the last leader
    await db.execute("UPDATE jobkeeper.schedules SET active = false WHERE id = %s", (schedule,))
    await wait_until_finished(db, acknowledged, timeout=30, fleet=fleet)

    async def ticks_done() -> bool:
        left = await scalar(
            db, "SELECT count(*) FROM jobkeeper.jobs WHERE status IN ('pending', 'processing')"
        )
        return int(left) == 0

    await eventually(ticks_done, timeout=30, what="every fired slot to run")
    await fleet.stop_all()
    report = await check_invariants(db, acknowledged)

    # A job's slot is in its idempotency key: its scheduled_at moves when it is retried or rescued.
    cur = await db.execute(
        "SELECT regexp_replace(idempotency_key, '^schedule:[^:]+:', '')::timestamptz AS slot,"
        " count(*), min(created_at) FROM jobkeeper.jobs WHERE type = 'fault-tick' GROUP BY 1 ORDER BY 1"
    )
    slots = await cur.fetchall()
    assert [s for s, n, _ in slots if n != 1] == [], "a slot fired more than once"
    span = round((slots[-1][0] - slots[0][0]).total_seconds())
    assert len(slots) == span + 1, f"{span + 1 - len(slots)} slots never fired"
    lateness = max(created - slot for slot, _, created in slots)
    missed = await scalar(db, "SELECT missed_runs FROM jobkeeper.schedules WHERE id = %s", (schedule,))
    assert missed == 0
    cur = await db.execute(
        "SELECT count(*) FROM jobkeeper.jobs WHERE id = ANY(%s) AND status = 'completed'"
        ' AND errors @> \'[{"type": "WorkerLost"}]\'',
        (list(held_by_dead),),
    )
    rescued_row = await cur.fetchone()
    assert rescued_row is not None
    assert rescued_row[0] == len(held_by_dead), "every job of a dead leader is rescued, then completes"
    summary(
        report.line(
            "7-leader-kill",
            f"SIGKILL of the maintenance leader while it runs jobs, {kills} times; cron every second",
            slots_fired=len(slots),
            slots_duplicated=0,
            slots_missed=span + 1 - len(slots),
            jobs_of_dead_leaders_rescued=len(held_by_dead),
            failover_max_s=max(failovers),
            slot_fired_late_max_s=lateness.total_seconds(),
        )
    )


def _by_id(workers: list[WorkerProcess], worker_id: uuid.UUID | None) -> WorkerProcess:
    for worker in workers:
        if worker.worker_id == worker_id:
            return worker
    raise AssertionError(f"the lease holder {worker_id} is none of the started workers")
