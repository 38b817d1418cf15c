"""Outbound rate limiters with real workers: the rate bound holds across workers, slots come back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg

from jobkeeper import Client, JobStatus, Settings, Worker
from jobkeeper.limits.outbound import gate
from jobkeeper.maintenance.rescuer import rescue_stale_jobs
from jobkeeper.worker import JobContext, Registry
from tests.payloads import unique
from tests.support import eventually


async def test_no_second_starts_more_than_rate_plus_burst_across_two_workers(
    client: Client, db_url: str, settings: Settings
) -> None:
    registry = Registry()
    ran_on: set[Any] = set()

    @registry.task("payment-process")
    async def charge(payload: Any, ctx: JobContext) -> None:
        ran_on.add(ctx.worker_id)

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        # stripe as seeded: 100/s, burst 20; an empty bucket to start with.
        await conn.execute(
            "UPDATE jobkeeper.rate_limiters SET tokens = 0, refilled_at = now() WHERE name = 'stripe'"
        )
        row = await (
            await conn.execute(
                "SELECT rate_per_second, burst FROM jobkeeper.rate_limiters WHERE name = 'stripe'"
            )
        ).fetchone()
        assert row == (100, 20)
    await client.enqueue_many(
        [{"type": "payment-process", "payload": unique("payment-process", n)} for n in range(2000)]
    )
    workers = [
        Worker(db_url, settings=settings, registry=registry, concurrency=50, poll_interval=0.05)
        for _ in range(2)
    ]
    for worker in workers:
        await worker.start()
    try:

        async def drained() -> bool:
            async with await psycopg.AsyncConnection.connect(db_url) as conn:
                row = await (
                    await conn.execute("SELECT count(*) FROM jobkeeper.jobs WHERE status <> 'completed'")
                ).fetchone()
                return row == (0,)

        await eventually(drained, timeout=90, what="2,000 payment jobs to complete at 100/s")
    finally:
        for worker in workers:
            await worker.stop(timeout=5)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT max(n) FROM (SELECT count(*) OVER (ORDER BY started_at RANGE BETWEEN CURRENT ROW AND"
            " interval '999.999 milliseconds' FOLLOWING) AS n FROM jobkeeper.jobs) windows"
        )
        busiest = await cur.fetchone()
        cur = await conn.execute("SELECT min(attempts), max(attempts) FROM jobkeeper.jobs")
        attempts = await cur.fetchone()
    assert busiest is not None
    print(f"busiest one-second window: {busiest[0]} job starts")
    assert busiest[0] <= 100 + 20, f"a one-second window started {busiest[0]} jobs"
    assert ran_on == {worker.id for worker in workers}  # both workers took part
    assert attempts == (1, 1)  # waiting for a token spent no attempt


async def test_concurrency_slots_come_back_when_a_worker_dies(client: Client, db_url: str) -> None:
    jobs = await client.enqueue_many(
        [{"type": "send-sms", "payload": unique("send-sms", n)} for n in range(15)]
    )
    dead_worker = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobkeeper.rate_limiters SET tokens = burst, rate_per_second = 1000, "
            "max_concurrency = 10 WHERE name = 'twilio'"
        )
        # A worker claimed ten SMS jobs, holds all of twilio's ten slots, and is SIGKILLed.
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = 1, worker_id = %s,"
            " heartbeat_at = now() WHERE id = ANY(%s)",
            (dead_worker, [j.id for j in jobs[:10]]),
        )
        live_worker = uuid.uuid4()
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = 1, worker_id = %s,"
            " heartbeat_at = now() WHERE id = ANY(%s)",
            (live_worker, [j.id for j in jobs[10:]]),
        )
        blocked = await gate(conn, [(j.id, "twilio") for j in jobs[10:]], worker_id=live_worker)
        assert blocked.granted == []  # every slot is held by the dead worker's jobs

        row = await (await conn.execute("SELECT now()")).fetchone()
        assert row is not None
        await rescue_stale_jobs(client.pool, lease_seconds=30, now=row[0] + timedelta(seconds=31))
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = 1, worker_id = %s,"
            " heartbeat_at = now() WHERE id = ANY(%s)",
            (live_worker, [j.id for j in jobs[10:]]),
        )
        freed = await gate(conn, [(j.id, "twilio") for j in jobs[10:]], worker_id=live_worker)
    assert sorted(freed.granted) == sorted(j.id for j in jobs[10:])
    rescued = await client.get_job(jobs[0].id)
    assert rescued is not None
    assert rescued.status is JobStatus.PENDING
