"""Graceful shutdown: running jobs finish until the deadline; the rest go back to pending unspent."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import psycopg

from jobkeeper import Client, JobContext
from jobkeeper.worker import Registry
from tests.support import eventually
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import job_row, output, wait_for_status, worker_process

Conn = psycopg.AsyncConnection[Any]


async def test_stop_lets_short_jobs_finish_and_returns_long_ones_without_spending_an_attempt(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    started: set[str] = set()
    all_started = asyncio.Event()
    saw_cancel: list[bool] = []

    @registry.task("report-kind")  # its own type: the payload names the kind
    async def report(payload: dict[str, Any], ctx: JobContext) -> str:
        started.add(payload["kind"])
        if len(started) == 2:
            all_started.set()
        try:
            await asyncio.sleep(0.3 if payload["kind"] == "short" else 60)
        except asyncio.CancelledError:
            saw_cancel.append(ctx.cancelled.is_set())
            raise
        return "done"

    await client.declare_type("report-kind")
    short = await client.enqueue("report-kind", {"kind": "short"})
    long = await client.enqueue("report-kind", {"kind": "long"})
    later = await client.enqueue("report-kind", {"kind": "later"}, delay=0.5)
    worker = make_worker()
    await worker.start()
    await asyncio.wait_for(all_started.wait(), 10)
    await worker.stop(timeout=1.0)
    assert (await job_row(db, short.id))["status"] == "completed"
    row = await job_row(db, long.id)
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    assert row["worker_id"] is None
    assert row["heartbeat_at"] is None
    assert row["errors"] == []
    assert saw_cancel == [True]
    # Nothing was claimed after stop() began.
    assert (await job_row(db, later.id))["attempts"] == 0
    cur = await db.execute("SELECT stopped_at FROM jobkeeper.workers WHERE id = %s", (worker.id,))
    stopped = await cur.fetchone()
    assert stopped is not None
    assert stopped[0] is not None


async def test_sigterm_stops_the_worker_command_gracefully(client: Client, db: Conn, db_url: str) -> None:
    await client.declare_type("slow-report", queue="background")  # the worker that handles it starts later
    job = await client.enqueue("slow-report", {"seconds": 60}, queue="background")
    env = {"JOBKEEPER_SHUTDOWN_TIMEOUT": "0.5"}
    with worker_process(db_url, "--import", "tests.worker.cli_handlers", env=env) as (process, stderr):
        await wait_for_status(db, job.id, "processing", timeout=20)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 20)
        assert code == 0, output(stderr)
    row = await job_row(db, job.id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("pending", 0, None)

    async def worker_stopped() -> bool:
        cur = await db.execute("SELECT count(*) FROM jobkeeper.workers WHERE stopped_at IS NOT NULL")
        found = await cur.fetchone()
        return found is not None and found[0] == 1

    await eventually(worker_stopped, what="the worker row marked stopped")
