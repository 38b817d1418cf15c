"""A job interrupted in the same loop iteration as its claim: its task is cancelled before its coroutine
first runs, so asyncio never enters the worker's `_run_job` (no `except`, no `finally`). Found by the
fault suite's soak (a cancel request that arrived with the claim left the job processing for ever)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from jobkeeper import Client, JobContext
from jobkeeper.store.outcomes import Claimed
from jobkeeper.worker import Registry
from tests.support import eventually
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import wait_for_status

Conn = psycopg.AsyncConnection[Any]


@pytest.mark.parametrize(
    ("reason", "status", "runs"),
    [("cancel", "cancelled", []), ("shutdown", "completed", [1])],  # released unspent, then run once
)
async def test_a_job_interrupted_before_its_task_first_runs_is_settled(
    client: Client,
    db: Conn,
    registry: Registry,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
    reason: str,
    status: str,
    runs: list[int],
) -> None:
    ran: list[int] = []

    @registry.task("generate-report")
    async def report(payload: Any, ctx: JobContext) -> None:
        ran.append(ctx.attempt)

    job = await client.enqueue("generate-report")
    worker = make_worker()
    start_job = worker._start_job

    interrupted: list[Claimed] = []

    def start_then_interrupt(claimed: Claimed) -> None:
        start_job(claimed)
        if not interrupted:  # once, before the new task ever runs
            interrupted.append(claimed)
            worker._interrupt(worker._running[claimed.job.id], reason)

    monkeypatch.setattr(worker, "_start_job", start_then_interrupt)
    async with worker:
        row = await wait_for_status(db, job.id, status, timeout=10.0)

        async def settled() -> bool:
            return worker.running_jobs == 0 and worker.slots.free == worker.concurrency

        await eventually(settled, timeout=5.0, what="the worker to give the slot back")
    assert ran == runs
    assert row["attempts"] == 1
