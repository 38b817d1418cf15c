"""A worker process is SIGKILLed in the middle of a batch; every job still ends completed with its effect
recorded exactly once (delivery is at-least-once; the idempotency key makes the effect exactly-once)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any, LiteralString

import psycopg

from jobkeeper import Client, Settings
from jobkeeper.maintenance.rescuer import rescue_stale_jobs
from jobkeeper.store.pool import async_pool
from tests.support import eventually
from tests.worker.helpers import output, worker_process

Conn = psycopg.AsyncConnection[Any]
JOBS = 200
WORKER = ("--import", "tests.worker.crash_handlers", "--concurrency", "10", "--batch-size", "10")


async def _count(db: Conn, sql: LiteralString) -> int:
    cur = await db.execute(sql)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_killed_worker_loses_no_job_and_doubles_no_effect(
    client: Client, db: Conn, db_url: str, settings: Settings
) -> None:
    await db.execute("CREATE TABLE effects (key text PRIMARY KEY)")
    await db.execute("CREATE TABLE runs (key text PRIMARY KEY, n integer NOT NULL)")
    await client.declare_type("record-effect", queue="money")  # its worker process starts later
    jobs = await client.enqueue_many(
        [
            {
                "type": "record-effect",
                "queue": "money",
                "payload": {"seconds": 0.05},
                "idempotency_key": f"fx-{n}",
            }
            for n in range(JOBS)
        ]
    )
    keys = {job.idempotency_key for job in jobs}

    with worker_process(db_url, *WORKER) as (first, _):

        async def halfway() -> bool:
            return await _count(db, "SELECT count(*) FROM effects") >= JOBS // 4

        await eventually(halfway, timeout=30, what="a quarter of the effects")
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)

    interrupted = await _count(db, "SELECT count(*) FROM jobkeeper.jobs WHERE status = 'processing'")
    assert interrupted > 0, "the kill should land in the middle of a batch"
    # The maintenance leader's rescuer returns the dead worker's jobs once their heartbeat is stale; the
    # lease is 0 here so that the test does not wait 30 s for it.
    pool = async_pool(settings, db_url)
    await pool.open()
    try:
        rescued = await rescue_stale_jobs(pool, lease_seconds=0.0)
    finally:
        await pool.close()
    assert rescued.returned == interrupted

    with worker_process(db_url, *WORKER) as (second, stderr):

        async def all_done() -> bool:
            return await _count(db, "SELECT count(*) FROM jobkeeper.jobs WHERE status = 'completed'") == JOBS

        await eventually(all_done, timeout=60, what="every job completed")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 20) == 0, output(stderr)

    cur = await db.execute("SELECT key FROM effects")
    effects = [row[0] for row in await cur.fetchall()]
    assert len(effects) == JOBS
    assert set(effects) == keys
    # Some jobs ran twice (they were running when the worker died); their effect still exists once.
    assert await _count(db, "SELECT sum(n) FROM runs") >= JOBS
    assert await _count(db, "SELECT count(*) FROM jobkeeper.dead_letter_jobs") == 0
