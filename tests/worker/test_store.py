"""Workers and leases through the store (jobkeeper/store/workers.py, leases.py), against the real database,
each test in a transaction rolled back afterwards."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

import psycopg

from jobkeeper import DEV_TENANT_ID
from jobkeeper.store import leases, outcomes, workers
from jobkeeper.store.run import run_sync

Conn = psycopg.Connection[Any]


def _register(conn: Conn, queues: list[str] | None = None) -> uuid.UUID:
    worker_id = uuid.uuid4()
    run_sync(
        conn,
        workers.register(
            worker_id=worker_id, queues=queues or ["background"], job_types=["generate-report"], concurrency=4
        ),
    )
    return worker_id


def test_a_registered_worker_is_live_until_stopped(conn: Conn) -> None:
    worker_id = _register(conn)
    (info,) = [w for w in run_sync(conn, workers.list_live(60)) if w.id == worker_id]
    assert (info.pid, info.queues, info.concurrency, info.running) == (os.getpid(), ["background"], 4, 0)
    assert run_sync(conn, workers.count_live(60))["live"] >= 1
    run_sync(conn, workers.stop(worker_id))
    assert worker_id not in {w.id for w in run_sync(conn, workers.list_live(60))}


def test_a_tenant_sees_only_the_queues_it_may_know(conn: Conn) -> None:
    other = uuid.uuid4()
    conn.execute("INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, 'other', 'other-t')", (other,))
    columns = (
        "tier, max_attempts, backoff, backoff_base_seconds, backoff_max_seconds, backoff_jitter,"
        " timeout_seconds, default_priority"
    )
    conn.execute(  # a copy of a shared queue, private to the other tenant
        f"INSERT INTO jobkeeper.queues (name, tenant_id, {columns})"
        f" SELECT 'private-q', %s, {columns} FROM jobkeeper.queues WHERE name = 'background'",
        (other,),
    )
    worker_id = _register(conn, ["background", "private-q"])
    (seen,) = [w for w in run_sync(conn, workers.list_live(60, DEV_TENANT_ID)) if w.id == worker_id]
    assert seen.queues == ["background"]


def test_heartbeat_returns_the_jobs_still_held_with_their_cancel_flag(conn: Conn) -> None:
    worker_id = _register(conn)
    conn.execute(
        "INSERT INTO jobkeeper.jobs (tenant_id, queue, type, payload, tier, max_attempts)"
        " SELECT %s, 'background', 'generate-report', '{}', 'durable', 3 FROM generate_series(1, 2)",
        (DEV_TENANT_ID,),
    )
    claimed = run_sync(conn, outcomes.claim(worker_id=worker_id, types=["generate-report"], limit=2))
    held, gone = sorted((c.job for c in claimed), key=lambda j: j.id)
    conn.execute("UPDATE jobkeeper.jobs SET cancel_requested = true WHERE id = %s", (held.id,))
    conn.execute("UPDATE jobkeeper.jobs SET worker_id = NULL WHERE id = %s", (gone.id,))
    rows = run_sync(
        conn, workers.heartbeat(worker_id=worker_id, ids=[held.id, gone.id], tiers=["durable"] * 2, running=2)
    )
    assert rows == [(held.id, True)]


def test_mark_lost_counts_the_workers_past_the_lease(conn: Conn) -> None:
    worker_id = _register(conn)
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    assert run_sync(conn, workers.mark_lost(lease_seconds=30, now=now[0] + timedelta(minutes=5))) >= 1
    assert worker_id not in {w.id for w in run_sync(conn, workers.list_live(3600))}


def test_listen_runs(conn: Conn) -> None:
    run_sync(conn, workers.listen())


def test_a_lease_has_one_holder_until_released(conn: Conn) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    name = f"test-{first.hex[:8]}"
    assert run_sync(conn, leases.acquire(name=name, holder=first, ttl=30))
    assert run_sync(conn, leases.acquire(name=name, holder=first, ttl=30))  # renewed
    assert not run_sync(conn, leases.acquire(name=name, holder=second, ttl=30))
    run_sync(conn, leases.release(name=name, holder=second))  # not its lease: nothing happens
    assert not run_sync(conn, leases.acquire(name=name, holder=second, ttl=30))
    run_sync(conn, leases.release(name=name, holder=first))
    assert run_sync(conn, leases.acquire(name=name, holder=second, ttl=30))
