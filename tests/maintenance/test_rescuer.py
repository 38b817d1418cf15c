from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from jobkeeper import Client, JobStatus
from jobkeeper.maintenance.rescuer import rescue_stale_jobs
from tests.payloads import unique


async def _claim(db_url: str, job_id: uuid.UUID, *, attempts: int, cancel: bool = False) -> uuid.UUID:
    """Put a job in the state a worker leaves it in when it claims it."""
    worker = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = %s, worker_id = %s,"
            " heartbeat_at = now(), started_at = now(), cancel_requested = %s WHERE id = %s",
            (attempts, worker, cancel, job_id),
        )
    return worker


async def _db_now(pool: AsyncConnectionPool[Any]) -> Any:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT now()")).fetchone()
        assert row is not None
        return row[0]


async def test_stale_jobs_return_fail_or_cancel_and_fresh_ones_stay(
    client: Client, pool: AsyncConnectionPool[Any], db_url: str
) -> None:
    retry = await client.enqueue("send-email", unique("send-email", 1))  # communication: 3 attempts
    spent = await client.enqueue("send-email", unique("send-email", 2))
    cancelled = await client.enqueue("send-email", unique("send-email", 3))
    done = await client.enqueue("send-email", unique("send-email", 4))
    await _claim(db_url, retry.id, attempts=1)
    await _claim(db_url, spent.id, attempts=3)
    await _claim(db_url, cancelled.id, attempts=1, cancel=True)
    await _claim(db_url, done.id, attempts=1)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE jobkeeper.jobs SET status = 'completed' WHERE id = %s", (done.id,))

    now = await _db_now(pool)
    # Heartbeats are fresh: nothing happens.
    assert (await rescue_stale_jobs(pool, lease_seconds=30, now=now + timedelta(seconds=10))).total == 0

    later = now + timedelta(seconds=31)
    result = await rescue_stale_jobs(pool, lease_seconds=30, now=later)
    assert (result.returned, result.failed, result.cancelled) == (1, 1, 1)

    returned = await client.get_job(retry.id)
    assert returned is not None
    assert returned.status is JobStatus.PENDING
    assert returned.attempts == 1
    assert returned.scheduled_at == later
    assert returned.errors[-1]["type"] == "WorkerLost"
    assert "no heartbeat for" in (returned.last_error or "")

    failed = await client.get_job(spent.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT job_id, attempts, errors->-1->>'type' FROM jobkeeper.dead_letter_jobs", prepare=False
        )
        assert await cur.fetchall() == [(spent.id, 3, "WorkerLost")]

    assert (await client.get_job(cancelled.id) or failed).status is JobStatus.CANCELLED
    assert (await client.get_job(done.id) or failed).status is JobStatus.COMPLETED
    # Running it again finds nothing more to do.
    assert (await rescue_stale_jobs(pool, lease_seconds=30, now=later)).total == 0


async def test_rescue_works_in_batches(client: Client, pool: AsyncConnectionPool[Any], db_url: str) -> None:
    jobs = await client.enqueue_many(
        [{"type": "send-sms", "payload": unique("send-sms", n)} for n in range(25)]
    )
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = 1, heartbeat_at = now(),"
            " worker_id = gen_random_uuid()"
        )
    now = await _db_now(pool)
    result = await rescue_stale_jobs(pool, lease_seconds=30, now=now + timedelta(minutes=1), limit=10)
    assert result.returned == len(jobs)


async def test_lost_workers_are_marked_stopped(pool: AsyncConnectionPool[Any], db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO jobkeeper.workers (hostname, pid, concurrency) VALUES ('a', 1, 1), ('b', 2, 1)"
        )
    now = await _db_now(pool)
    assert (await rescue_stale_jobs(pool, lease_seconds=30, now=now + timedelta(seconds=5))).lost_workers == 0
    assert (
        await rescue_stale_jobs(pool, lease_seconds=30, now=now + timedelta(seconds=31))
    ).lost_workers == 2
