"""Cancellation: pending jobs at once, running jobs through NOTIFY or the heartbeat, from either client."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper import Client, JobContext, JobFinishedError, JobStatus, PermanentError, SyncClient
from jobkeeper.worker import Registry
from tests.payloads import VALID
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import job_row, wait_for_row, wait_for_status

Conn = psycopg.AsyncConnection[Any]


async def test_a_pending_job_is_cancelled_at_once(client: Client, db: Conn) -> None:
    job = await client.enqueue("send-email", VALID["send-email"], delay=60)
    cancelled = await client.cancel(job.id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.completed_at is not None
    assert (await client.get_job(job.id)) == cancelled
    # Cancelling again returns it unchanged.
    assert await client.cancel(str(job.id)) == cancelled
    assert await client.cancel(uuid.uuid4()) is None


def test_the_sync_client_cancels_too(sync_client: SyncClient) -> None:
    job = sync_client.enqueue("send-sms", VALID["send-sms"])
    cancelled = sync_client.cancel(job.id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert sync_client.cancel(uuid.uuid4()) is None


async def test_a_pending_job_cancelled_in_a_rolled_back_transaction_stays_pending(
    client: Client, db_url: str
) -> None:
    job = await client.enqueue("send-email", VALID["send-email"])
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cancelled = await client.cancel(job.id, conn=conn)
        assert cancelled is not None
        assert cancelled.status is JobStatus.CANCELLED
        await conn.rollback()
    fetched = await client.get_job(job.id)
    assert fetched is not None
    assert fetched.status is JobStatus.PENDING


async def test_a_running_async_handler_is_cancelled_within_a_second(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    started = asyncio.Event()
    interrupted = asyncio.Event()
    saw_signal: list[bool] = []

    @registry.task("generate-report")
    async def report(payload: Any, ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            saw_signal.append(ctx.cancelled.is_set())
            interrupted.set()
            raise

    job = await client.enqueue("generate-report")
    async with make_worker(heartbeat_interval=20.0):  # the heartbeat is too slow to be what stops it
        await asyncio.wait_for(started.wait(), 10)
        asked = time.monotonic()
        requested = await client.cancel(job.id)
        assert requested is not None
        assert requested.status is JobStatus.PROCESSING
        await asyncio.wait_for(interrupted.wait(), 1.0)
        row = await wait_for_status(db, job.id, "cancelled", timeout=2.0)
        assert time.monotonic() - asked < 1.0
    assert saw_signal == [True]
    assert row["errors"][-1]["type"] == "Cancelled"
    assert row["worker_id"] is None


async def test_the_heartbeat_picks_up_a_cancellation_whose_notification_was_lost(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    started = asyncio.Event()

    @registry.task("generate-report")
    async def report(payload: Any, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    job = await client.enqueue("generate-report")
    async with make_worker(heartbeat_interval=0.1):
        await asyncio.wait_for(started.wait(), 10)
        # As if the NOTIFY never arrived: only the flag is set.
        await db.execute("UPDATE jobkeeper.jobs SET cancel_requested = true WHERE id = %s", (job.id,))
        await wait_for_status(db, job.id, "cancelled", timeout=3.0)


async def test_a_failure_after_a_cancel_request_does_not_retry(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    started = asyncio.Event()
    go_on = asyncio.Event()

    @registry.task("send-email")
    async def send(payload: Any, ctx: JobContext) -> None:
        started.set()
        await go_on.wait()
        raise ConnectionError("failed anyway")

    job = await client.enqueue("send-email", VALID["send-email"])
    async with make_worker(heartbeat_interval=20.0):
        await asyncio.wait_for(started.wait(), 10)
        # Flag set behind the worker's back (no NOTIFY), then the handler fails: cancelled, not pending.
        await db.execute("UPDATE jobkeeper.jobs SET cancel_requested = true WHERE id = %s", (job.id,))
        go_on.set()
        row = await wait_for_row(db, job.id, lambda r: r["status"] != "processing", what="the failure")
    assert row["status"] == "cancelled"
    assert row["errors"][-1]["type"] == "ConnectionError"
    assert (await job_row(db, job.id))["completed_at"] is not None


async def test_cancelling_a_failed_job_is_an_error_from_both_clients(
    client: Client, sync_client: SyncClient, db: Conn, make_worker: WorkerFactory
) -> None:
    registry = Registry()

    @registry.task("always-fails", queue="background", max_attempts=1)
    async def always_fails(payload: Any, ctx: JobContext) -> None:
        raise PermanentError("card declined " + "x" * 500)

    async with make_worker(registry=registry):  # started first: it makes its type known, max_attempts=1
        job = await client.enqueue("always-fails", {"note": "y" * 500})
        await wait_for_status(db, job.id, "failed")
    # As the API (409) and `jobkeeper jobs cancel` (exit 1): a finished job cannot be cancelled.
    with pytest.raises(JobFinishedError, match=f"job {job.id} has already failed; it cannot be cancelled"):
        await client.cancel(job.id)
    with pytest.raises(JobFinishedError) as raised:
        sync_client.cancel(job.id)
    assert raised.value.job.status is JobStatus.FAILED

    # Its repr is one short line: the tracebacks are counted, not printed.
    failed = await client.get_job(job.id)
    assert failed is not None
    assert failed.errors[0]["traceback"]
    shown = repr(failed)
    assert len(shown) < 400
    assert "Traceback" not in shown
    assert f"Job(id='{job.id}', type='always-fails'" in shown
    assert "errors=[1 recorded]" in shown
