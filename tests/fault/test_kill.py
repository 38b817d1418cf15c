"""Scenario 1: one of two workers is SIGKILLed in the middle of its batch, again and again.

The victim is restarted at once (as `jobkeeper up` would); its jobs are rescued by the maintenance leader
once their heartbeat is older than the lease and run again. Reported per kill: the time from the kill to
the rescue of the victim's jobs (back in the queue), and to the completion of the last of them (which
includes waiting behind the backlog the kills leave).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from jobkeeper import Client
from tests.fault.harness import (
    Conn,
    Fleet,
    Producer,
    Summary,
    db_now,
    job,
    pause,
    scalar,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants
from tests.support import eventually

VARIANTS = [
    pytest.param(8.0, id="short"),
    pytest.param(60.0, id="slow", marks=pytest.mark.slow),
]
KILL_EVERY = 2.5
WORKER = ("--concurrency", "10", "--batch-size", "10")


async def _held(db: Conn, worker_id: uuid.UUID) -> list[uuid.UUID]:
    cur = await db.execute(
        "SELECT id FROM jobkeeper.jobs WHERE status = 'processing' AND worker_id = %s", (worker_id,)
    )
    return [row[0] for row in await cur.fetchall()]


@pytest.mark.parametrize("duration", VARIANTS)
async def test_repeated_sigkill_of_one_of_two_workers_loses_nothing_and_doubles_no_effect(
    db: Conn, fleet: Fleet, producer_client: Client, summary: Summary, duration: float
) -> None:
    workers = await fleet.start_many(db, 2, *WORKER)
    producer = Producer(
        producer_client, lambda n: job("money", f"kill-{n}", work=0.2, max_attempts=25), rate=40
    ).start()
    kills: list[tuple[datetime, list[uuid.UUID]]] = []
    started = await db_now(db)
    while (await db_now(db) - started).total_seconds() < duration:
        await pause(KILL_EVERY)
        victim = workers[len(kills) % 2]
        worker_id = await victim.registered(db)
        held: list[uuid.UUID] = []

        async def mid_batch(worker_id: uuid.UUID = worker_id) -> bool:
            nonlocal held
            held = await _held(db, worker_id)
            return len(held) >= 2

        await eventually(mid_batch, timeout=10, what=f"{victim.name} to run a batch")
        victim.kill()
        kills.append((await db_now(db), await _held(db, worker_id)))
        fleet.restart(victim)
    ids = await producer.stop()
    # The backlog left by a minute of kills on a busy machine takes a while to drain.
    await wait_until_finished(db, ids, timeout=30 + duration, fleet=fleet)
    await fleet.stop_all()

    report = await check_invariants(db, ids)
    recoveries, rescues = [], []
    for killed_at, held in kills:
        last = await scalar(db, "SELECT max(completed_at) FROM jobkeeper.jobs WHERE id = ANY(%s)", (held,))
        recoveries.append((last - killed_at).total_seconds())
        # When the rescuer put the victim's jobs back in the queue: each job's first WorkerLost entry
        # after this kill (a job may die again with a later victim).
        rescued_at = await scalar(
            db,
            "SELECT max(first) FROM (SELECT min((e->>'at')::timestamptz) AS first"
            " FROM jobkeeper.jobs, jsonb_array_elements(errors) e WHERE id = ANY(%s)"
            " AND e->>'type' = 'WorkerLost' AND (e->>'at')::timestamptz >= %s GROUP BY id) AS firsts",
            (held, killed_at),
        )
        if rescued_at is not None:
            rescues.append((rescued_at - killed_at).total_seconds())
    interrupted = sum(len(held) for _, held in kills)
    assert report.rescued >= len(kills), "every kill should leave jobs for the rescuer"
    assert report.re_executions >= len(kills)
    summary(
        report.line(
            "1-sigkill",
            f"SIGKILL of one of two workers every {KILL_EVERY:g} s for {duration:g} s",
            kills=len(kills),
            interrupted_jobs=interrupted,
            rescued_within_max_s=max(rescues),
            recovery_max_s=max(recoveries),
            recovery_mean_s=sum(recoveries) / len(recoveries),
        )
    )
