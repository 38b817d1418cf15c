"""Job dependencies run by real workers: chains, fan-in, failure cascades, and the enqueue/complete race."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper import Client, JobContext, JobStatus, PermanentError, SyncClient
from jobkeeper.errors import InvalidJobError
from jobkeeper.store import dependencies
from jobkeeper.store.run import run
from jobkeeper.worker import Registry
from tests.payloads import VALID, unique
from tests.worker.conftest import WorkerFactory
from tests.worker.conftest import db as db
from tests.worker.conftest import make_worker as make_worker
from tests.worker.conftest import registry as registry
from tests.worker.helpers import job_row, wait_for_all, wait_for_status

Conn = psycopg.AsyncConnection[Any]
# The steps' own type: its payload names the step. Declared before the jobs are enqueued (the worker that
# registers it starts later). send-push has no idempotency key: identical payloads are separate jobs.
STEP = "report-step"
PUSH = VALID["send-push"]


async def test_a_chain_runs_in_order(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    ran: list[str] = []

    @registry.task(STEP)
    async def step(payload: Any, ctx: JobContext) -> None:
        ran.append(payload["step"])

    await client.declare_type(STEP)
    a = await client.enqueue(STEP, {"step": "a"})
    b = await client.enqueue(STEP, {"step": "b"}, depends_on=[a.id])
    c = await client.enqueue(STEP, {"step": "c"}, depends_on=[str(b.id)])
    assert (a.status, b.status, c.status) == (JobStatus.PENDING, JobStatus.WAITING, JobStatus.WAITING)

    async with make_worker():
        await wait_for_all(db, [a.id, b.id, c.id], "completed")

    rows = {name: await job_row(db, job.id) for name, job in (("a", a), ("b", b), ("c", c))}
    assert ran == ["a", "b", "c"]
    assert rows["b"]["started_at"] >= rows["a"]["completed_at"]
    assert rows["c"]["started_at"] >= rows["b"]["completed_at"]
    assert rows["a"]["has_dependents"]
    assert rows["b"]["has_dependents"]
    assert not rows["c"]["has_dependents"]


async def test_fan_in_runs_once_after_both_parents(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    runs: list[str] = []
    release_b = asyncio.Event()

    @registry.task(STEP)
    async def step(payload: Any, ctx: JobContext) -> None:
        if payload["step"] == "b":
            await release_b.wait()
        runs.append(payload["step"])

    await client.declare_type(STEP)
    a = await client.enqueue(STEP, {"step": "a"})
    b = await client.enqueue(STEP, {"step": "b"})
    c = await client.enqueue(STEP, {"step": "c"}, depends_on=[a.id, b.id])

    async with make_worker():
        await wait_for_status(db, a.id, "completed")
        assert (await job_row(db, c.id))["status"] == "waiting"  # b still runs
        release_b.set()
        await wait_for_status(db, c.id, "completed")

    rows = {name: await job_row(db, job.id) for name, job in (("a", a), ("b", b), ("c", c))}
    assert runs.count("c") == 1
    assert runs[-1] == "c"
    assert rows["c"]["started_at"] >= max(rows["a"]["completed_at"], rows["b"]["completed_at"])
    assert rows["c"]["attempts"] == 1


async def test_a_failing_parent_cancels_its_dependents_transitively(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    ran: list[str] = []

    @registry.task(STEP)
    async def step(payload: Any, ctx: JobContext) -> None:
        ran.append(payload["step"])
        if payload["step"] == "a":
            raise PermanentError("the report source is gone")

    await client.declare_type(STEP)
    a = await client.enqueue(STEP, {"step": "a"})
    b = await client.enqueue(STEP, {"step": "b"}, depends_on=[a.id])
    c = await client.enqueue(STEP, {"step": "c"}, depends_on=[b.id])
    other = await client.enqueue(STEP, {"step": "other"})
    d = await client.enqueue(STEP, {"step": "d"}, depends_on=[other.id, c.id])

    async with make_worker():
        await wait_for_all(db, [b.id, c.id, d.id], "cancelled")
        await wait_for_status(db, other.id, "completed")

    assert (await job_row(db, a.id))["status"] == "failed"
    assert (await job_row(db, b.id))["last_error"] == f"dependency {a.id} failed"
    assert (await job_row(db, c.id))["last_error"] == f"dependency {b.id} was cancelled"
    assert (await job_row(db, d.id))["last_error"] == f"dependency {c.id} was cancelled"
    assert sorted(ran) == ["a", "other"]


async def test_cancelling_a_waiting_parent_cancels_its_children(client: Client, db: Conn) -> None:
    a = await client.enqueue("send-email", unique("send-email", 1), delay=60)
    b = await client.enqueue("send-email", unique("send-email", 2), depends_on=[a.id])
    c = await client.enqueue("send-email", unique("send-email", 3), depends_on=[b.id])

    cancelled_b = await client.cancel(b.id)  # a waiting job is cancelled like a pending one
    assert cancelled_b is not None
    assert cancelled_b.status is JobStatus.CANCELLED
    row = await job_row(db, c.id)
    assert (row["status"], row["last_error"]) == ("cancelled", f"dependency {b.id} was cancelled")
    assert (await job_row(db, a.id))["status"] == "pending"


def test_the_sync_client_links_and_cancels(sync_client: SyncClient) -> None:
    a = sync_client.enqueue("send-sms", unique("send-sms", 1), delay=60)
    b = sync_client.enqueue("send-sms", unique("send-sms", 2), depends_on=[a.id])
    assert b.status is JobStatus.WAITING
    sync_client.cancel(a.id)
    fetched = sync_client.get_job(b.id)
    assert fetched is not None
    assert fetched.status is JobStatus.CANCELLED
    assert fetched.last_error == f"dependency {a.id} was cancelled"


async def test_parents_already_finished_at_enqueue(client: Client, db: Conn) -> None:
    done = await client.enqueue("send-email", unique("send-email", 1), delay=60)
    gone = await client.enqueue("send-email", unique("send-email", 2), delay=60)
    await db.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = %s", (done.id,)
    )
    await client.cancel(gone.id)

    ready = await client.enqueue("send-email", unique("send-email", 3), depends_on=[done.id])
    assert ready.status is JobStatus.PENDING
    doomed = await client.enqueue("send-email", unique("send-email", 4), depends_on=[done.id, gone.id])
    assert doomed.status is JobStatus.CANCELLED
    assert doomed.last_error == f"dependency {gone.id} was cancelled"
    assert (await job_row(db, doomed.id))["status"] == "cancelled"


async def test_unknown_or_other_tenant_parents_are_refused_and_nothing_is_enqueued(
    client: Client, db: Conn
) -> None:
    other_tenant = uuid.uuid4()
    await db.execute(
        "INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, 'Other', %s)",
        (other_tenant, f"other-{other_tenant.hex[:8]}"),
    )
    foreign = await client.enqueue("send-email", unique("send-email", 1), delay=60, tenant_id=other_tenant)
    unknown = uuid.uuid4()
    before = await (await db.execute("SELECT count(*) FROM jobkeeper.jobs")).fetchone()

    with pytest.raises(InvalidJobError, match=f"depends_on: no job {unknown} for this tenant"):
        await client.enqueue("send-email", unique("send-email", 2), depends_on=[unknown])
    with pytest.raises(InvalidJobError, match=rf"jobs\[1\]\.depends_on: no job {foreign.id} for this tenant"):
        await client.enqueue_many(
            [
                {"type": "send-email", "payload": unique("send-email", 3)},
                {"type": "send-email", "payload": unique("send-email", 4), "depends_on": [foreign.id]},
            ]
        )
    with pytest.raises(InvalidJobError, match=r"depends_on: 0 is not the index of an earlier job"):
        await client.enqueue("send-email", unique("send-email", 5), depends_on=[0])  # type: ignore[list-item]
    with pytest.raises(InvalidJobError, match="at most 100 jobs"):
        await client.enqueue(
            "send-email", unique("send-email", 6), depends_on=[uuid.uuid4() for _ in range(101)]
        )

    after = await (await db.execute("SELECT count(*) FROM jobkeeper.jobs")).fetchone()
    assert before == after
    count = await (await db.execute("SELECT count(*) FROM jobkeeper.job_dependencies")).fetchone()
    assert count == (0,)


async def test_a_batch_may_depend_on_its_earlier_jobs(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    ran: list[int] = []

    @registry.task(STEP)
    async def step(payload: Any, ctx: JobContext) -> None:
        ran.append(payload["n"])

    await client.declare_type(STEP)
    jobs = await client.enqueue_many(
        [
            {"type": STEP, "payload": {"n": 0}},
            {"type": STEP, "payload": {"n": 1}},
            {"type": STEP, "payload": {"n": 2}, "depends_on": [0, 1]},
            {"type": STEP, "payload": {"n": 3}, "depends_on": [2]},
        ]
    )
    assert [job.status for job in jobs] == ["pending", "pending", "waiting", "waiting"]
    async with make_worker():
        await wait_for_all(db, [job.id for job in jobs], "completed")
    assert sorted(ran[:2]) == [0, 1]
    assert ran[2:] == [2, 3]


async def test_a_child_enqueued_while_its_parent_completes_is_never_left_waiting(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    # Children are enqueued on their own transactions while workers complete the parents: each child
    # either sees its parent completed (pending at once) or is released by the completion's settle.
    @registry.task("send-push")
    async def push(payload: Any, ctx: JobContext) -> None:
        return None

    children: list[uuid.UUID] = []
    async with make_worker(concurrency=20), make_worker(concurrency=20):
        for _ in range(30):
            parents = await client.enqueue_many([{"type": "send-push", "payload": PUSH} for _ in range(10)])
            for parent in parents:
                child = await client.enqueue("send-push", PUSH, depends_on=[parent.id])
                children.append(child.id)
        await wait_for_all(db, children, "completed", timeout=30)


async def test_fan_ins_whose_parents_complete_at_once_are_all_released(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    # Two workers complete the two parents of each fan-in at about the same time, in separate
    # transactions: the settle after the later commit sees both parents completed, whichever it is.
    @registry.task("send-push")
    async def push(payload: Any, ctx: JobContext) -> None:
        return None

    pairs = 100
    items: list[dict[str, Any]] = [{"type": "send-push", "payload": PUSH} for _ in range(2 * pairs)]
    items += [{"type": "send-push", "payload": PUSH, "depends_on": [n, pairs + n]} for n in range(pairs)]
    jobs = await client.enqueue_many(items)
    children = [job.id for job in jobs[2 * pairs :]]
    async with make_worker(concurrency=20, batch_size=5), make_worker(concurrency=20, batch_size=5):
        await wait_for_all(db, children, "completed", timeout=30)


async def test_the_settle_after_the_later_of_two_commits_releases_a_fan_in(
    client: Client, db: Conn, db_url: str
) -> None:
    # The race the two statements exist for, made deterministic: each parent completes in its own
    # transaction and each settle runs after its own commit. The first settle cannot see the other
    # parent's uncommitted completion; the second sees both.
    a, b = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", n), "delay": 600} for n in (1, 2)]
    )
    child = await client.enqueue("send-email", unique("send-email", 3), depends_on=[a.id, b.id])
    complete = "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = %s"
    async with await psycopg.AsyncConnection.connect(db_url) as first:
        await first.execute(complete, (a.id,))  # not committed yet
        await db.execute(complete, (b.id,))  # autocommit
        await run(db, dependencies.settle([b.id]))
        assert (await job_row(db, child.id))["status"] == "waiting"
        await first.commit()
    await run(db, dependencies.settle([a.id]))
    assert (await job_row(db, child.id))["status"] == "pending"
