"""Scenario 6: handlers that hang, leak memory, raise inside `finally`, or block the event loop.

The *subject* worker runs them (and a stream of ordinary jobs) without maintenance; an *observer* worker
holds the maintenance lease and serves a queue that gets no jobs, so its rescuer is the one that would
return the subject's jobs if the subject stopped heartbeating. The subject must keep its heartbeats (no
job of it is ever rescued), time the misbehaving jobs out, and go on with the others.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg.rows import dict_row

from jobkeeper import Client
from jobkeeper.worker.worker import ABANDON_AFTER
from tests.fault.harness import (
    HANDLERS,
    LEASE_SECONDS,
    MISBEHAVING,
    Conn,
    Fleet,
    Producer,
    Summary,
    WorkerProcess,
    job,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants
from tests.fault.timeouts import TIMEOUT
from tests.support import eventually

LEAK_MB = 25
LEAKS = 4


async def _workers(db: Conn, fleet: Fleet, *, observer: bool = True) -> WorkerProcess:
    """Start the subject and (unless told otherwise) the observer, the only worker that competes for the
    maintenance lease; return the subject once both serve."""
    watcher = (
        fleet.start("--queues", "communication", "--concurrency", "2", name="observer") if observer else None
    )
    subject = fleet.start(
        "--queues",
        "background",
        "--concurrency",
        "12",
        *(("--no-maintenance",) if observer else ()),
        imports=(HANDLERS, MISBEHAVING),
        name="subject",
    )
    await subject.registered(db)
    if watcher is not None:
        await watcher.registered(db)

        async def leader() -> bool:
            cur = await db.execute("SELECT holder FROM jobkeeper.leases WHERE name = 'maintenance'")
            row = await cur.fetchone()
            return row is not None and row[0] == watcher.worker_id

        await eventually(leader, timeout=15, what="the observer to take the maintenance lease")
    return subject


async def _enqueue(client: Client, type_: str, payload: dict[str, Any], **options: Any) -> uuid.UUID:
    found = await client.enqueue(type_, payload, idempotency_key=False, **options)
    return found.id


async def _row(db: Conn, job_id: uuid.UUID) -> dict[str, Any]:
    cur = db.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM jobkeeper.jobs WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    assert row is not None
    return row


def _error_types(row: dict[str, Any]) -> list[str]:
    return [entry["type"] for entry in row["errors"]]


async def test_misbehaving_handlers_are_timed_out_and_the_worker_goes_on(
    db: Conn, fleet: Fleet, producer_client: Client, summary: Summary
) -> None:
    client = producer_client
    subject = await _workers(db, fleet)
    probes = Producer(client, lambda n: job("background", f"probe-{n}", work=0.05), rate=20).start()
    rss_start = subject.rss_mb()

    witnesses = [await _enqueue(client, "fault-witness", {"seconds": 6, "n": n}) for n in range(2)]
    hang_process = await _enqueue(client, "fault-hang-process", {"n": 1}, max_attempts=2)
    hang_thread = await _enqueue(client, "fault-hang-thread", {"seconds": 6}, max_attempts=1)
    finally_after_return = await _enqueue(client, "fault-raise-in-finally", {"seconds": 0.05}, max_attempts=2)
    finally_on_timeout = await _enqueue(client, "fault-raise-in-finally", {"seconds": 30}, max_attempts=2)
    contained = [await _enqueue(client, "fault-leak-process", {"mb": LEAK_MB, "n": n}) for n in range(LEAKS)]
    await wait_until_finished(db, contained, timeout=30, fleet=fleet)
    rss_contained = subject.rss_mb()
    leaks = [await _enqueue(client, "fault-leak", {"mb": LEAK_MB, "n": n}) for n in range(LEAKS)]
    await wait_until_finished(db, leaks, timeout=30, fleet=fleet)
    rss_leaked = subject.rss_mb()

    misbehaving = [hang_process, hang_thread, finally_after_return, finally_on_timeout]
    await wait_until_finished(db, [*witnesses, *misbehaving], timeout=30, fleet=fleet)
    ids = [*await probes.stop(), *witnesses, *misbehaving, *contained, *leaks]
    await wait_until_finished(db, ids, timeout=30, fleet=fleet)

    async def no_children() -> bool:
        return not subject.job_processes()

    await eventually(no_children, timeout=10, what="the killed job processes to be reaped")
    await fleet.stop_all()

    expected = {job_id: "failed" for job_id in misbehaving}
    report = await check_invariants(db, ids, expected=expected)
    assert report.rescued == 0, "the subject kept heartbeating: none of its jobs may be rescued"
    for witness in witnesses:
        row = await _row(db, witness)
        assert (row["status"], row["attempts"], row["errors"]) == ("completed", 1, [])
    assert _error_types(await _row(db, hang_process)) == ["TimeoutError", "TimeoutError"]
    assert _error_types(await _row(db, hang_thread)) == ["TimeoutError"]
    assert _error_types(await _row(db, finally_after_return)) == ["RuntimeError", "RuntimeError"]
    assert _error_types(await _row(db, finally_on_timeout)) == ["RuntimeError", "RuntimeError"]
    # A leak under process isolation dies with its child; one in the worker's own threads stays.
    assert rss_contained - rss_start < 30
    assert rss_leaked - rss_contained > 0.8 * LEAK_MB * LEAKS
    probes_done = report.by_type.get("fault-background", {}).get("completed", 0)
    assert probes_done == len(ids) - len(witnesses) - len(misbehaving) - len(contained) - len(leaks)
    summary(
        report.line(
            "6-misbehaving-handlers",
            "hang in a child process (ignores SIGTERM), hang in a thread, raise in finally (after return "
            f"and on timeout), {LEAKS}x{LEAK_MB} MB leak in a thread and in a child; timeout {TIMEOUT:g} s",
            probes_completed=probes_done,
            rss_start_mb=rss_start,
            rss_after_contained_leak_mb=rss_contained,
            rss_after_leak_mb=rss_leaked,
        )
    )


async def test_an_async_handler_that_swallows_cancellation_is_still_timed_out(
    db: Conn, fleet: Fleet, producer_client: Client
) -> None:
    """Regression: the executor awaited the handler under asyncio.timeout only, so a handler that swallows
    CancelledError was never timed out and its job stayed processing, kept alive by the heartbeat. The
    worker now abandons it `ABANDON_AFTER` seconds after its timeout and writes the timeout itself."""
    subject = await _workers(db, fleet, observer=False)
    hang = await _enqueue(producer_client, "fault-hang-async", {"seconds": 20}, max_attempts=1)

    async def timed_out() -> bool:
        row = await _row(db, hang)
        return bool(row["status"] != "processing" and row["attempts"] == 1)

    await eventually(timed_out, timeout=TIMEOUT + 3, what="the hung job to be timed out")
    row = await _row(db, hang)
    assert (row["status"], _error_types(row)) == ("failed", ["TimeoutError"]), subject.log_tail()
    await check_invariants(db, [hang], expected={hang: "failed"})


async def test_a_handler_blocking_the_event_loop_does_not_stop_the_heartbeat(
    db: Conn, fleet: Fleet, producer_client: Client
) -> None:
    """Regression: the heartbeat was a task on the worker's event loop, so sync code inside an async
    handler stopped it; after a block longer than the lease the rescuer returned every job of the worker,
    which then ran twice. The heartbeat now runs on a thread of its own."""
    subject = await _workers(db, fleet)
    witness = await _enqueue(producer_client, "fault-witness", {"seconds": LEASE_SECONDS + 3})

    async def running() -> bool:
        return bool((await _row(db, witness))["status"] == "processing")

    await eventually(running, timeout=10, what="the witness to start")
    block = LEASE_SECONDS + 2
    blocker = await _enqueue(producer_client, "fault-block-loop", {"block": block}, max_attempts=1)
    await wait_until_finished(db, [witness, blocker], timeout=30, fleet=fleet)
    witness_row = await _row(db, witness)
    assert "WorkerLost" not in _error_types(witness_row), subject.log_tail()
    assert (witness_row["status"], witness_row["attempts"]) == ("completed", 1)
    blocker_row = await _row(db, blocker)
    assert (blocker_row["status"], _error_types(blocker_row)) == ("failed", ["TimeoutError"])
    await check_invariants(db, [witness, blocker], expected={blocker: "failed"})


async def test_sigterm_stops_a_worker_whose_handler_swallows_cancellation(
    db: Conn, fleet: Fleet, producer_client: Client
) -> None:
    """Regression: the worker gave up on a job task that ignored its cancellation (and logged it as
    returned to pending, though no outcome was written), then `asyncio.run` waited for that task for
    ever: SIGTERM never stopped the worker. Now the job is released and the process exits."""
    subject = fleet.start(
        "--queues",
        "background",
        imports=(HANDLERS, MISBEHAVING),
        env={"JOBKEEPER_SHUTDOWN_TIMEOUT": "1"},
        name="subject",
    )
    await subject.registered(db)
    hang = await _enqueue(producer_client, "fault-hang-async", {"seconds": 60}, max_attempts=3)

    async def running() -> bool:
        return bool((await _row(db, hang))["status"] == "processing")

    await eventually(running, timeout=10, what="the hung job to start")
    code = await subject.terminate(timeout=8.0)  # 1 s of grace, 1 s for cancelled jobs, and some
    assert code == 0, subject.log_tail()
    row = await _row(db, hang)
    assert (row["status"], row["attempts"], row["errors"]) == ("pending", 0, []), "released unspent"


@pytest.mark.slow
async def test_a_worker_whose_event_loop_stays_blocked_gives_its_jobs_up_to_the_rescuer(
    db: Conn, fleet: Fleet, producer_client: Client
) -> None:
    """The other side of a heartbeat on its own thread: a loop blocked for longer than the longest job
    timeout plus `ABANDON_AFTER` plus the lease stops the heartbeat of the worker's jobs, so that the
    rescuer hands them to a worker that can run them (here the subject itself, once unblocked)."""
    subject = await _workers(db, fleet)
    witness = await _enqueue(producer_client, "fault-witness", {"seconds": 2})

    async def running() -> bool:
        return bool((await _row(db, witness))["status"] == "processing")

    await eventually(running, timeout=10, what="the witness to start")
    block = TIMEOUT + ABANDON_AFTER + 2 * LEASE_SECONDS + 4
    blocker = await _enqueue(producer_client, "fault-block-loop", {"block": block}, max_attempts=1)

    async def rescued() -> bool:
        return "WorkerLost" in _error_types(await _row(db, witness))

    await eventually(rescued, timeout=block + 10, what="the witness to be rescued from the stalled worker")
    await wait_until_finished(db, [witness, blocker], timeout=30, fleet=fleet)
    witness_row = await _row(db, witness)
    assert witness_row["status"] == "completed", subject.log_tail()
    assert (await _row(db, blocker))["status"] == "failed"
    assert fleet.count_in_logs("are no longer heartbeated and will be rescued") == 1, subject.log_tail()
    report = await check_invariants(db, [witness, blocker], expected={blocker: "failed"})
    assert report.rescued == 2
