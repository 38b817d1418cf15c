"""The claim statement on its own: readiness, types, queues, priorities, fairness, caps, locking, plan."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from jobkeeper import DEV_TENANT_ID, Client, Settings
from jobkeeper.store import outcomes
from jobkeeper.store.outcomes import Claimed
from jobkeeper.store.queries import query
from jobkeeper.store.run import run
from jobkeeper.worker.connection import connection_kwargs
from tests.payloads import VALID, unique
from tests.worker.helpers import db_now, job_row


async def claim(conn: psycopg.AsyncConnection[Any], **kwargs: Any) -> list[Claimed]:
    return await run(conn, outcomes.claim(**kwargs))


Conn = psycopg.AsyncConnection[Any]
TENANT_A = uuid.UUID("0000000a-0000-0000-0000-00000000000a")
TENANT_B = uuid.UUID("0000000b-0000-0000-0000-00000000000b")


async def _tenant(db: Conn, tenant_id: uuid.UUID, *, max_concurrency: int | None = None) -> None:
    await db.execute(
        "INSERT INTO jobkeeper.tenants (id, name, slug, max_concurrency) VALUES (%s, %s, %s, %s)",
        (tenant_id, f"tenant {tenant_id.hex[-8:]}", f"t-{tenant_id.hex[-8:]}", max_concurrency),
    )


async def test_claim_marks_jobs_processing_for_this_worker(client: Client, db: Conn) -> None:
    job = await client.enqueue("send-email", VALID["send-email"])
    worker_id = uuid.uuid4()
    (claimed,) = await claim(db, worker_id=worker_id, types=["send-email"], limit=10)
    assert claimed.job.id == job.id
    assert claimed.job.attempts == 1
    row = await job_row(db, job.id)
    assert row["status"] == "processing"
    assert row["worker_id"] == worker_id
    assert row["started_at"] is not None
    assert row["heartbeat_at"] == row["started_at"]
    assert await claim(db, worker_id=worker_id, types=["send-email"], limit=10) == []


async def test_claim_takes_only_ready_jobs_of_known_types_from_open_queues(client: Client, db: Conn) -> None:
    later = await client.enqueue("send-email", unique("send-email", 1), delay=60)
    other_type = await client.enqueue("send-sms", VALID["send-sms"])
    paused = await client.enqueue("analytics-track", VALID["analytics-track"])
    wanted = await client.enqueue("send-email", unique("send-email", 2))
    await db.execute("UPDATE jobkeeper.queues SET paused = true WHERE name = 'background'")
    types = ["send-email", "analytics-track"]
    got = await claim(db, worker_id=uuid.uuid4(), types=types, limit=10)
    assert [c.job.id for c in got] == [wanted.id]
    # With the clock moved on, the scheduled job is ready; the queue filter keeps out other queues.
    now = await db_now(db) + timedelta(seconds=61)
    assert await claim(db, worker_id=uuid.uuid4(), types=types, limit=10, queues=["money"], now=now) == []
    got = await claim(db, worker_id=uuid.uuid4(), types=types, limit=10, now=now)
    assert [c.job.id for c in got] == [later.id]
    assert (await job_row(db, other_type.id))["status"] == "pending"
    assert (await job_row(db, paused.id))["status"] == "pending"


async def test_claim_orders_by_priority_then_scheduled_at(client: Client, db: Conn) -> None:
    priorities = [5, 1, 10, 5, 7, 3, 10]
    jobs = [
        await client.enqueue("send-email", unique("send-email", n), priority=p)
        for n, p in enumerate(priorities)
    ]
    first = await claim(db, worker_id=uuid.uuid4(), types=["send-email"], limit=3)
    rest = await claim(db, worker_id=uuid.uuid4(), types=["send-email"], limit=10)
    order = [c.job.id for c in first + rest]
    expected = sorted(jobs, key=lambda j: (-j.priority, j.scheduled_at))
    assert order == [j.id for j in expected]


async def test_a_flood_from_one_tenant_does_not_starve_another(client: Client, db: Conn) -> None:
    await _tenant(db, TENANT_A)
    await _tenant(db, TENANT_B)
    await client.enqueue_many(
        [
            {"type": "send-email", "tenant_id": TENANT_A, "payload": unique("send-email", n)}
            for n in range(10_000)
        ]
    )
    await client.enqueue_many(
        [{"type": "send-email", "tenant_id": TENANT_B, "payload": unique("send-email", n)} for n in range(10)]
    )
    await db.execute("ANALYZE jobkeeper.jobs")
    worker_id = uuid.uuid4()
    first = await claim(db, worker_id=worker_id, types=["send-email"], limit=20)
    tenants = [c.job.tenant_id for c in first]
    # A's jobs are older and as urgent, yet B's ten all start in the first batch, alternating with A's.
    assert tenants.count(TENANT_B) == 10
    assert tenants.count(TENANT_A) == 10
    second = await claim(db, worker_id=worker_id, types=["send-email"], limit=20)
    assert {c.job.tenant_id for c in second} == {TENANT_A}


async def test_a_tenant_at_its_concurrency_cap_gets_no_more_claims(client: Client, db: Conn) -> None:
    await _tenant(db, TENANT_A, max_concurrency=2)
    await client.enqueue_many(
        [{"type": "send-email", "tenant_id": TENANT_A, "payload": unique("send-email", n)} for n in range(5)]
    )
    await client.enqueue_many(
        [
            {"type": "send-email", "tenant_id": DEV_TENANT_ID, "payload": unique("send-email", n)}
            for n in range(5)
        ]
    )
    worker_id = uuid.uuid4()
    got = await claim(db, worker_id=worker_id, types=["send-email"], limit=20)
    by_tenant = [c.job.tenant_id for c in got]
    assert by_tenant.count(TENANT_A) == 2
    assert by_tenant.count(DEV_TENANT_ID) == 5
    assert await claim(db, worker_id=worker_id, types=["send-email"], limit=20) == []
    # One finishes: one more may start.
    await db.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed' WHERE id = %s",
        (next(c.job.id for c in got if c.job.tenant_id == TENANT_A),),
    )
    again = await claim(db, worker_id=worker_id, types=["send-email"], limit=20)
    assert [c.job.tenant_id for c in again] == [TENANT_A]


async def test_concurrent_claims_never_take_the_same_job(client: Client, db_url: str) -> None:
    jobs = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", n)} for n in range(300)]
    )
    conns = [
        await psycopg.AsyncConnection.connect(db_url, autocommit=True, options="-c jit=off") for _ in range(4)
    ]
    try:

        async def drain(conn: Conn) -> list[uuid.UUID]:
            taken: list[uuid.UUID] = []
            while batch := await claim(conn, worker_id=uuid.uuid4(), types=["send-email"], limit=7):
                taken.extend(c.job.id for c in batch)
            return taken

        results = await asyncio.gather(*(drain(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    taken = [job_id for result in results for job_id in result]
    assert len(taken) == len(set(taken)) == len(jobs)


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [node]
    for child in node.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


async def _explain_as_the_worker(db_url: str, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the plan the worker runs: the claim connection's settings, the statement
    prepared (so its generic plan), executed in a transaction that is rolled back."""
    sql = query("claim_jobs")
    order = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    async with (
        await psycopg.AsyncConnection.connect(db_url, **connection_kwargs(settings, "claim")) as conn,
        conn.transaction(force_rollback=True),
    ):
        await conn.execute(sql, params, prepare=True)
        cur = await conn.execute(
            "SELECT name, parameter_types::text[] FROM pg_prepared_statements"
            " WHERE statement LIKE '%%claimed AS%%'"
        )
        name, types = await cur.fetchone() or ("", [])
        placeholders = ", ".join(f"%s::{t}" for t in types)
        async with conn.transaction(force_rollback=True):
            # EXPLAIN takes no bound parameters: the values are inlined (client-side binding).
            explain = psycopg.AsyncClientCursor(conn)
            await explain.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}({placeholders})",
                [params[key] for key in order],
            )
            row = await explain.fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]
    return plan


@pytest.mark.parametrize("statistics", ["fresh", "taken-before-the-backlog"])
async def test_claim_plan_stays_on_indexes_with_ten_thousand_ready_jobs(
    client: Client, db: Conn, db_url: str, settings: Settings, statistics: str
) -> None:
    await _tenant(db, TENANT_A)
    await _tenant(db, TENANT_B)
    # History: finished jobs that an index led by tenant_id would walk through before the pending ones.
    finished = await client.enqueue_many(
        [
            {"type": "send-email", "tenant_id": TENANT_A, "payload": unique("send-email", n)}
            for n in range(3_000)
        ]
    )
    await db.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = ANY(%s)",
        ([j.id for j in finished],),
    )
    if statistics != "fresh":
        await db.execute("VACUUM ANALYZE jobkeeper.jobs")
    await client.enqueue_many(
        [
            {"type": "send-email", "tenant_id": TENANT_A, "payload": unique("send-email", 3_000 + n)}
            for n in range(10_000)
        ]
    )
    await client.enqueue_many(
        [{"type": "send-email", "tenant_id": TENANT_B, "payload": unique("send-email", n)} for n in range(10)]
    )
    await client.enqueue_many(
        [
            {"type": "analytics-track", "tenant_id": TENANT_A, "payload": unique("analytics-track", n)}
            for n in range(100)
        ]
    )
    if statistics == "fresh":
        await db.execute("VACUUM ANALYZE jobkeeper.jobs")
    params = {"worker_id": uuid.uuid4(), "types": ["send-email"], "limit": 50, "queues": None, "now": None}
    plan = await _explain_as_the_worker(db_url, settings, params)
    nodes = _plan_nodes(plan["Plan"])
    partitions = {"jobs", "jobs_logged", "jobs_ephemeral"}
    scans = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in partitions]
    scanned = [(n["Relation Name"], n["Actual Rows"]) for n in scans if n["Actual Loops"]]
    assert scanned == [], "the claim must never read a jobs partition sequentially"
    index_scans = {n.get("Index Name", "") for n in nodes if "Index" in n["Node Type"] and n["Actual Loops"]}
    logged = {name for name in index_scans if name.startswith("jobs_logged")}
    # The pending-jobs index and the primary key (the update), nothing led by tenant_id or created_at.
    assert logged <= {"jobs_logged_queue_tenant_id_priority_scheduled_at_idx", "jobs_logged_pkey"}, logged
    claimed = next(n for n in nodes if n["Node Type"] == "ModifyTable")
    assert claimed["Actual Rows"] == 50
    # Cheap at this size: a few hundred buffers, not the whole table.
    assert plan["Execution Time"] < 500


async def test_tenants_with_only_future_jobs_do_not_shrink_the_batch(client: Client, db: Conn) -> None:
    tenants = [uuid.UUID(int=n) for n in range(0x100, 0x100 + 40)]
    for tenant in tenants:
        await _tenant(db, tenant)
    await client.enqueue_many(
        [
            {"type": "send-email", "tenant_id": t, "payload": unique("send-email", n), "delay": 3600}
            for n, t in enumerate(tenants)
        ]
    )
    ready = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", 100 + n)} for n in range(60)]
    )
    got = await claim(db, worker_id=uuid.uuid4(), types=["send-email"], limit=50)
    assert len(got) == 50
    assert {c.job.id for c in got} <= {j.id for j in ready}
