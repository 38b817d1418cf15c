"""Helpers of the money processor tests: a job and its context without a database, a worker subprocess
running the built-in money processors, and waiting for a job's row."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from jobkeeper.config import Settings
from jobkeeper.maintenance.rescuer import rescue_stale_jobs
from jobkeeper.store.pool import async_pool
from jobkeeper.types import DEV_TENANT_ID, Job, JobStatus, Tier
from jobkeeper.worker.context import JobContext
from tests.worker import helpers as worker_helpers

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.AsyncConnection[Any]

# What a user's worker module does to run the built-in money processors, inlined for the subprocess.
WORKER_BOOT = (
    "from jobkeeper.processors.nft import processor as nft\n"
    "from jobkeeper.processors.payments import processor as payments\n"
    "from jobkeeper.worker.registry import default_registry\n"
    "payments.register(default_registry)\n"
    "nft.register(default_registry, poll_interval=0.05)\n"
    "from jobkeeper.cli import main\n"
    "main()\n"
)


def make_job(
    job_type: str,
    payload: Any,
    *,
    key: str | None = "order-1",
    tenant: uuid.UUID = DEV_TENANT_ID,
    attempt: int = 1,
    job_id: uuid.UUID | None = None,
) -> Job:
    now = datetime.now(UTC)
    return Job(
        id=job_id or uuid.uuid4(),
        tenant_id=tenant,
        queue="money",
        type=job_type,
        payload=payload,
        status=JobStatus.PROCESSING,
        tier=Tier.DURABLE,
        priority=7,
        attempts=attempt,
        max_attempts=10,
        last_error=None,
        errors=[],
        result=None,
        progress=None,
        idempotency_key=key,
        scheduled_at=now,
        started_at=now,
        completed_at=None,
        created_at=now,
        updated_at=now,
    )


def context(job: Job) -> JobContext:
    return JobContext(job, timeout=60.0, worker_id=uuid.uuid4(), progress_sink=lambda ref, progress: None)


@contextmanager
def worker_process(db_url: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`jobkeeper worker` in a child process, with the built-in money processors registered."""
    environment = {
        **os.environ,
        "DATABASE_URL": db_url,
        "JOBKEEPER_POLL_INTERVAL": "0.05",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    environment.pop("JOBKEEPER_TEST_DATABASE_URL", None)
    command = [
        sys.executable,
        "-c",
        WORKER_BOOT,
        "worker",
        "--import",
        "jobkeeper.processors.payments.processor",
    ]
    command += ["--concurrency", "4", "--batch-size", "4"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()


async def wait_for_status(
    db: Conn, job_id: uuid.UUID, *statuses: str, timeout: float = 15.0
) -> dict[str, Any]:
    """`tests.worker.helpers.wait_for_status` with the longer wait a provider round trip needs."""
    return await worker_helpers.wait_for_status(db, job_id, *statuses, timeout=timeout)


async def db_now(db: Conn) -> datetime:
    cur = await db.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


async def rescue(db: Conn, db_url: str, settings: Settings) -> None:
    """What the maintenance leader's rescuer does once the killed worker's heartbeat is older than the
    lease. The lease is 0 at the database's current time: with a `now` in the future, the rescued job
    would be scheduled at that future time and the test would wait for it."""
    pool = async_pool(settings, db_url)
    await pool.open()
    try:
        rescued = await rescue_stale_jobs(pool, lease_seconds=0.0, now=await db_now(db))
    finally:
        await pool.close()
    assert rescued.returned == 1
