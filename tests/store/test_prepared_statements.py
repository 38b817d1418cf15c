"""JOBKEEPER_DB_PREPARED_STATEMENTS=false: no connection of the client or a worker prepares a statement
(what PgBouncer in transaction mode before 1.21 needs), and everything still works."""

from __future__ import annotations

from typing import Any

import psycopg

from jobkeeper import Client, JobContext, JobStatus, Settings, Worker
from jobkeeper.worker import Registry
from jobkeeper.worker.connection import DedicatedConnection
from tests.payloads import unique
from tests.support import eventually


async def _prepared(client: Client) -> int:
    async with client.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_with_prepared_statements_off_nothing_is_prepared(db_url: str) -> None:
    base = {"pool_min": 1, "pool_max": 1, "acquire_timeout": 5.0}
    async with Client(db_url, settings=Settings.from_env({}, **base)) as client:
        for n in range(8):  # psycopg prepares a statement on its 5th run on a connection
            await client.enqueue("send-sms", unique("send-sms", n))
        assert await _prepared(client) > 0  # the default, to show the check can see them

    settings = Settings.from_env({"JOBKEEPER_DB_PREPARED_STATEMENTS": "false"}, **base)
    assert settings.connection_kwargs()["prepare_threshold"] is None
    registry = Registry()

    @registry.task("send-sms")
    async def sent(payload: Any, ctx: JobContext) -> None:
        return None

    async with Client(db_url, settings=settings) as client:
        jobs = [await client.enqueue("send-sms", unique("send-sms", n)) for n in range(8)]
        assert await _prepared(client) == 0
        async with Worker(db_url, settings=settings, registry=registry, poll_interval=0.05):

            async def all_done() -> bool:
                found = [await client.get_job(job.id) for job in jobs]
                return all(job is not None and job.status is JobStatus.COMPLETED for job in found)

            await eventually(all_done, what="the jobs to complete without prepared statements")
        # The worker's own connections (claim, outcomes, LISTEN, heartbeat) are made like this one.
        probe = DedicatedConnection(db_url, settings, "probe")
        conn = await probe.get()
        for _ in range(6):
            await conn.execute(
                "SELECT count(*) FROM jobkeeper.jobs WHERE tenant_id = %s", (jobs[0].tenant_id,)
            )
        cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
        assert await cur.fetchone() == (0,)
        await probe.close()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM jobkeeper.jobs WHERE status = 'completed'")
        assert await cur.fetchone() == (16,)  # the first client's jobs too
