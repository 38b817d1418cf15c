from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from jobkeeper.maintenance.leader import Leader, acquire, release
from tests.support import eventually


async def _db_now(pool: AsyncConnectionPool[Any]) -> Any:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT now()")).fetchone()
        assert row is not None
        return row[0]


async def test_one_holder_at_a_time_until_the_lease_expires(pool: AsyncConnectionPool[Any]) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    now = await _db_now(pool)
    assert await acquire(pool, a, ttl=30, now=now)
    assert not await acquire(pool, b, ttl=30, now=now)
    assert await acquire(pool, a, ttl=30, now=now + timedelta(seconds=10))  # renewal
    assert not await acquire(pool, b, ttl=30, now=now + timedelta(seconds=39))
    assert await acquire(pool, b, ttl=30, now=now + timedelta(seconds=41))  # a's renewal expired
    assert not await acquire(pool, a, ttl=30, now=now + timedelta(seconds=41))
    await release(pool, a)  # releasing a lease one does not hold changes nothing
    assert not await acquire(pool, a, ttl=30, now=now + timedelta(seconds=42))
    await release(pool, b)
    assert await acquire(pool, a, ttl=30, now=now + timedelta(seconds=42))


class Counter:
    name = "counter"
    interval = 0.05

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        self.runs += 1


async def test_only_the_leader_runs_tasks_and_a_dead_leaders_lease_passes_on(
    pool: AsyncConnectionPool[Any],
) -> None:
    first_tasks, second_tasks = Counter(), Counter()
    first = Leader(pool, uuid.uuid4(), [first_tasks], ttl=0.9)
    second = Leader(pool, uuid.uuid4(), [second_tasks], ttl=0.9)
    first.start()

    async def first_leads() -> bool:
        return first.is_leader and first_tasks.runs >= 2

    await eventually(first_leads, what="the first leader to run its tasks")
    second.start()

    async def second_tried_twice() -> bool:
        return second.checks >= 2

    await eventually(second_tried_twice, what="the second leader to try the lease")
    assert not second.is_leader
    assert second_tasks.runs == 0

    # The first leader dies without releasing its lease (its task is cancelled, as by SIGKILL).
    assert first._task is not None
    first._task.cancel()

    async def second_leads() -> bool:
        return second.is_leader and second_tasks.runs >= 1

    await eventually(second_leads, timeout=5, what="fail-over to the second leader")
    await second.stop()
    assert not second.is_leader
    # A clean stop releases the lease at once.
    assert await acquire(pool, uuid.uuid4(), ttl=30)
