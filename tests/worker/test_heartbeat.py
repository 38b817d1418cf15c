"""Heartbeats: own task and connection, not stopped by blocking handlers; lost jobs are let go."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg

from jobkeeper import Client, JobContext
from jobkeeper.worker import Registry
from tests.support import eventually
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import job_row, wait_for_status

Conn = psycopg.AsyncConnection[Any]


async def test_a_blocking_sync_handler_does_not_stop_the_heartbeats(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    release = threading.Event()

    @registry.task("generate-report")
    def blocking(payload: Any, ctx: JobContext) -> str:
        release.wait(30)  # blocks its thread, as sync I/O does
        return "done"

    job = await client.enqueue("generate-report")
    worker = make_worker(heartbeat_interval=0.1)
    async with worker:
        row = await wait_for_status(db, job.id, "processing")
        seen = {row["heartbeat_at"]}

        async def beating() -> bool:
            seen.add((await job_row(db, job.id))["heartbeat_at"])
            return len(seen) >= 4

        await eventually(beating, timeout=5.0, what="three heartbeats during the blocking handler")
        cur = await db.execute(
            "SELECT heartbeat_at > started_at FROM jobkeeper.workers WHERE id = %s", (worker.id,)
        )
        assert await cur.fetchone() == (True,)
        release.set()
        row = await wait_for_status(db, job.id, "completed")
    assert row["result"] == "done"


async def test_a_job_taken_away_from_the_worker_is_stopped_and_its_outcome_dropped(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    started = asyncio.Event()
    interrupted = asyncio.Event()

    @registry.task("generate-report")
    async def report(payload: Any, ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    job = await client.enqueue("generate-report")
    worker = make_worker(heartbeat_interval=0.1)
    async with worker:
        await asyncio.wait_for(started.wait(), 10)
        # As the rescuer does for a worker it believes dead: back to pending, no longer this worker's.
        await db.execute(
            "UPDATE jobkeeper.jobs SET status = 'pending', worker_id = NULL,"
            " scheduled_at = now() + interval '1 hour' WHERE id = %s",
            (job.id,),
        )
        await asyncio.wait_for(interrupted.wait(), 3.0)

        async def idle() -> bool:
            return worker.running_jobs == 0 and worker.completer.backlog == 0

        await eventually(idle, what="the worker to let the job go")
    # Nothing was written over the job the worker no longer holds.
    row = await job_row(db, job.id)
    assert (row["status"], row["errors"], row["worker_id"]) == ("pending", [], None)
