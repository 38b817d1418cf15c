"""Timeouts: an async handler is cancelled, a sync handler's late result is discarded, and a handler under
process isolation is killed."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import psycopg

from jobkeeper import Client, JobContext
from jobkeeper.worker import Registry
from tests.worker import handlers
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import dead_letter, job_row, wait_for_row, wait_for_status

Conn = psycopg.AsyncConnection[Any]


async def test_an_async_handler_is_cancelled_at_its_timeout(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    cancelled = asyncio.Event()

    @registry.task("generate-report", timeout=0.2)
    async def slow(payload: Any, ctx: JobContext) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await client.enqueue("generate-report", max_attempts=1)
    async with make_worker():
        row = await wait_for_status(db, job.id, "failed")
    assert cancelled.is_set()
    (entry,) = row["errors"]
    assert entry["type"] == "TimeoutError"
    assert "0.2 s" in entry["message"]
    assert await dead_letter(db, job.id) is not None


async def test_the_job_timeout_column_wins_over_the_task_timeout(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("generate-report", timeout=60)
    async def slow(payload: Any, ctx: JobContext) -> None:
        await asyncio.sleep(30)

    job = await client.enqueue("generate-report", max_attempts=2)
    await db.execute("UPDATE jobkeeper.jobs SET timeout_seconds = 0.1 WHERE id = %s", (job.id,))
    async with make_worker():
        row = await wait_for_row(db, job.id, lambda r: bool(r["errors"]), what="the timeout")
    assert row["errors"][0]["type"] == "TimeoutError"
    assert row["attempts"] == 1


async def test_a_sync_handler_result_after_its_timeout_is_discarded(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    release = threading.Event()
    saw_cancel = threading.Event()

    @registry.task("cleanup-old-data", timeout=0.2)
    def blocking(payload: Any, ctx: JobContext) -> str:
        release.wait(10)
        if ctx.is_cancelled:
            saw_cancel.set()
        return "too late"

    job = await client.enqueue("cleanup-old-data", max_attempts=1)
    async with make_worker():
        row = await wait_for_status(db, job.id, "failed")
        release.set()
        await asyncio.to_thread(saw_cancel.wait, 5)
    assert saw_cancel.is_set()
    assert row["result"] is None
    assert row["errors"][0]["type"] == "TimeoutError"
    assert (await job_row(db, job.id))["status"] == "failed"


async def test_process_isolation_kills_a_handler_that_spins_forever(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    registry.task("cpu-burn", queue="background", timeout=1.5, isolation="process")(handlers.spin_forever)
    await client.declare_type("cpu-burn", queue="background")
    pidfile = tmp_path / "pid"
    job = await client.enqueue("cpu-burn", {"pidfile": str(pidfile)}, queue="background", max_attempts=1)
    async with make_worker():
        row = await wait_for_status(db, job.id, "failed", timeout=20)
    assert row["errors"][0]["type"] == "TimeoutError"
    pid = int(pidfile.read_text())
    assert not _alive(pid), "the child process must be killed at the timeout"


async def test_process_isolation_returns_results_progress_and_errors(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    registry.task("crunch", queue="background", isolation="process")(handlers.crunch)
    registry.task("refuse", queue="background", isolation="process")(handlers.refuse)
    await client.declare_type("crunch", queue="background")
    await client.declare_type("refuse", queue="background")
    ok = await client.enqueue("crunch", {"n": 1000}, queue="background")
    bad = await client.enqueue("refuse", {}, queue="background")
    async with make_worker():
        ok_row = await wait_for_status(db, ok.id, "completed", timeout=20)
        bad_row = await wait_for_status(db, bad.id, "failed", timeout=20)
    assert ok_row["result"]["sum"] == sum(range(1000))
    assert ok_row["result"]["pid"] != os.getpid()
    assert ok_row["result"]["attempt"] == 1
    assert ok_row["progress"]["note"] == "half way"
    assert bad_row["errors"][0]["type"] == "PermanentError"
    assert "malformed input" in bad_row["errors"][0]["message"]
    assert "raise PermanentError" in bad_row["errors"][0]["traceback"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child that nobody reaped yet is a zombie: dead for our purpose.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()
