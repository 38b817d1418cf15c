"""The dependency sweep settles waiting jobs whose parents finished without settling them; retention keeps
a parent while its dependents wait and takes a pruned job's dependency edges with it."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from jobkeeper import Client, JobStatus
from jobkeeper.maintenance.dependencies import SweepResult, sweep_waiting_jobs
from jobkeeper.maintenance.retention import Horizons, prune
from tests.maintenance.conftest import pool as pool
from tests.maintenance.support import sql
from tests.payloads import unique


async def _finish(pool: AsyncConnectionPool[Any], job_id: uuid.UUID, status: str) -> None:
    """Finish a job the way no worker would: a bare UPDATE, without settling its dependents."""
    await sql(
        pool, "UPDATE jobkeeper.jobs SET status = %s, completed_at = now() WHERE id = %s", (status, job_id)
    )


async def _status(client: Client, job_id: uuid.UUID) -> tuple[JobStatus, str | None]:
    job = await client.get_job(job_id)
    assert job is not None
    return job.status, job.last_error


async def test_the_sweep_releases_and_cancels_what_no_settle_reached(
    client: Client, pool: AsyncConnectionPool[Any]
) -> None:
    done, broken, alive, gone = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", n), "delay": 600} for n in range(4)]
    )
    released = await client.enqueue("send-email", unique("send-email", 4), depends_on=[done.id])
    cancelled = await client.enqueue("send-email", unique("send-email", 5), depends_on=[done.id, broken.id])
    grandchild = await client.enqueue("send-email", unique("send-email", 6), depends_on=[cancelled.id])
    still = await client.enqueue("send-email", unique("send-email", 7), depends_on=[done.id, alive.id])
    orphan = await client.enqueue("send-email", unique("send-email", 8), depends_on=[gone.id])
    await _finish(pool, done.id, "completed")
    await _finish(pool, broken.id, "failed")
    await sql(pool, "DELETE FROM jobkeeper.jobs WHERE id = %s", (gone.id,))

    assert await sweep_waiting_jobs(pool) == SweepResult(released=1, cancelled=2)

    assert await _status(client, released.id) == (JobStatus.PENDING, None)
    assert await _status(client, cancelled.id) == (JobStatus.CANCELLED, f"dependency {broken.id} failed")
    assert await _status(client, grandchild.id) == (
        JobStatus.CANCELLED,
        f"dependency {cancelled.id} was cancelled",
    )
    assert await _status(client, still.id) == (JobStatus.WAITING, None)
    assert await _status(client, orphan.id) == (JobStatus.CANCELLED, f"dependency {gone.id} no longer exists")
    # Nothing left to do: a second sweep changes nothing.
    assert await sweep_waiting_jobs(pool) == SweepResult()


async def test_retention_keeps_a_parent_while_its_dependents_wait(
    client: Client, pool: AsyncConnectionPool[Any]
) -> None:
    # send-push derives no idempotency key, which would keep a finished job until the key expires.
    first, second = await client.enqueue_many(
        [
            {"type": "send-push", "payload": unique("send-push", 0)},
            {"type": "send-push", "payload": unique("send-push", 1), "delay": 600},
        ]
    )
    child = await client.enqueue("send-push", unique("send-push", 2), depends_on=[first.id, second.id])
    lone = await client.enqueue("send-push", unique("send-push", 3))
    for job in (first, lone):
        await _finish(pool, job.id, "completed")
    await sql(
        pool,
        "UPDATE jobkeeper.jobs SET completed_at = now() - interval '30 days' WHERE id = ANY(%s)",
        ([first.id, lone.id],),
    )

    await prune(pool, Horizons(finished_jobs=86400))
    assert await client.get_job(lone.id) is None
    assert await client.get_job(first.id) is not None  # its child still waits on it

    await _finish(pool, second.id, "completed")
    assert await sweep_waiting_jobs(pool) == SweepResult(released=1)
    await _finish(pool, child.id, "completed")
    await sql(
        pool,
        "UPDATE jobkeeper.jobs SET completed_at = now() - interval '30 days' WHERE id = ANY(%s)",
        ([first.id, second.id, child.id],),
    )
    await prune(pool, Horizons(finished_jobs=86400))
    assert await sql(pool, "SELECT count(*) FROM jobkeeper.jobs") == [(0,)]
    assert await sql(pool, "SELECT count(*) FROM jobkeeper.job_dependencies") == [(0,)]
