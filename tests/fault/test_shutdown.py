"""Scenario 8: graceful shutdown (SIGTERM) of a worker under load, again and again.

Workers get 1 s to finish running jobs (JOBKEEPER_SHUTDOWN_TIMEOUT): short jobs finish, long ones are
returned to pending without spending their attempt, and the worker exits 0 with nothing of it left
processing. Nothing fails and nobody is rescued, so at the end every job is completed at attempt 1 with no
error entry, however many times it was interrupted.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from jobkeeper import Client
from tests.fault.harness import (
    Conn,
    Fleet,
    Producer,
    Summary,
    job,
    pause,
    scalar,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants
from tests.support import eventually

VARIANTS = [
    pytest.param(2, id="short"),
    pytest.param(12, id="slow", marks=pytest.mark.slow),
]
GRACE = {"JOBKEEPER_SHUTDOWN_TIMEOUT": "1"}
WORKER = ("--concurrency", "20", "--batch-size", "10")
STOP_EVERY = 2.0


def _mixed(n: int) -> dict[str, object]:
    if n % 10 == 0:
        return job("money", f"stop-{n}", work=4.0)  # outlives the grace period
    return job("money", f"stop-{n}", work=0.1)


async def _held(db: Conn, worker_id: uuid.UUID) -> list[uuid.UUID]:
    cur = await db.execute(
        "SELECT id FROM jobkeeper.jobs WHERE status = 'processing' AND worker_id = %s", (worker_id,)
    )
    return [row[0] for row in await cur.fetchall()]


@pytest.mark.parametrize("stops", VARIANTS)
async def test_sigterm_under_load_loses_nothing_and_spends_no_attempt(
    db: Conn, fleet: Fleet, producer_client: Client, summary: Summary, stops: int
) -> None:
    workers = await fleet.start_many(db, 2, *WORKER, env=GRACE)
    producer = Producer(producer_client, _mixed, rate=30).start()
    interrupted: set[uuid.UUID] = set()
    shutdowns: list[float] = []
    for round_ in range(stops):
        await pause(STOP_EVERY)
        victim = workers[round_ % 2]
        worker_id = await victim.registered(db)  # a restarted victim may take seconds on a busy machine
        held: list[uuid.UUID] = []

        async def running_jobs(worker_id: uuid.UUID = worker_id) -> bool:
            nonlocal held
            held = await _held(db, worker_id)
            return bool(held)

        await eventually(running_jobs, timeout=20, what=f"{victim.name} to run jobs before SIGTERM")
        began = time.monotonic()
        code = await victim.terminate(timeout=30)
        shutdowns.append(time.monotonic() - began)
        assert code == 0, victim.log_tail()
        left = await _held(db, worker_id)
        assert left == [], f"{victim.name} exited with jobs still processing: {left}"
        stopped = await scalar(db, "SELECT stopped_at FROM jobkeeper.workers WHERE id = %s", (worker_id,))
        assert stopped is not None
        interrupted.update(held)
        victim.start()
    ids = await producer.stop()
    await wait_until_finished(db, ids, timeout=30, fleet=fleet)
    await fleet.stop_all()
    report = await check_invariants(db, ids)

    cur = await db.execute(
        "SELECT count(*) FILTER (WHERE attempts <> 1), count(*) FILTER (WHERE errors <> '[]')"
        " FROM jobkeeper.jobs"
    )
    spent = await cur.fetchone()
    assert spent == (0, 0), "a graceful shutdown spent an attempt or recorded an error"
    released = int(
        await scalar(
            db,
            "SELECT count(DISTINCT job_id) FROM fault_executions WHERE job_id = ANY(%s)"
            " AND job_id IN (SELECT job_id FROM fault_executions GROUP BY job_id HAVING count(*) > 1)",
            (list(interrupted),),
        )
    )
    assert released > 0, "some long jobs should have been returned to pending and run again"
    assert report.rescued == 0
    summary(
        report.line(
            "8-graceful-shutdown",
            f"SIGTERM of one of two workers every {STOP_EVERY:g} s, {stops} times; 1 s grace; "
            "10 % of jobs 4 s long",
            running_at_sigterm=len(interrupted),
            released_and_rerun=released,
            attempts_spent_by_shutdown=0,
            shutdown_max_s=max(shutdowns),
        )
    )


async def test_ctrl_c_says_what_it_waits_for_and_a_second_one_hands_the_jobs_back_at_once(
    db: Conn, fleet: Fleet, producer_client: Client
) -> None:
    worker = fleet.start("--concurrency", "2", env={"JOBKEEPER_SHUTDOWN_TIMEOUT": "60"})
    worker_id = await worker.registered(db)
    (long,) = await producer_client.enqueue_many([job("money", "ctrl-c", work=120.0)])

    async def running() -> bool:
        return await _held(db, worker_id) == [long.id]

    await eventually(running, timeout=20, what="the long job to run")
    worker.signal(signal.SIGINT)

    def said(text: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return text in worker.log_text()

        return check

    # It says which job it waits for, and how long at most.
    await eventually(said(f"fault-money {long.id}"), timeout=10, what="the wait to be reported")
    assert re.search(r"waiting (59|60) s more for 1 running jobs", worker.log_text()), worker.log_tail()
    began = time.monotonic()
    worker.signal(signal.SIGINT)  # the second Ctrl-C: stop now
    code = await asyncio.to_thread(worker.process.wait, 20) if worker.process else None
    assert code == 0, worker.log_tail()
    assert time.monotonic() - began < 15  # not the 60 s of the shutdown timeout
    assert "handing 1 running jobs back to pending" in worker.log_text()
    # Handed back as at the deadline: pending again, its attempt not spent, nothing lost.
    status, attempts = (
        await (
            await db.execute("SELECT status, attempts FROM jobkeeper.jobs WHERE id = %s", (long.id,))
        ).fetchone()
    ) or (None, None)
    assert (status, attempts) == ("pending", 0)
