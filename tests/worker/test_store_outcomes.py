"""An attempt's life through the store (jobkeeper/store/outcomes.py), against the real database. Each test
runs in a transaction rolled back afterwards; tests/worker covers the same statements under a worker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg

from jobkeeper import DEV_TENANT_ID
from jobkeeper.store import dependencies, outcomes
from jobkeeper.store.outcomes import Claimed, JobRef
from jobkeeper.store.run import run_sync

Conn = psycopg.Connection[Any]
TYPE = "generate-report"


def _jobs(conn: Conn, n: int, *, max_attempts: int = 3, status: str = "pending") -> list[uuid.UUID]:
    rows = conn.execute(
        "INSERT INTO jobkeeper.jobs (tenant_id, queue, type, payload, tier, max_attempts, status)"
        " SELECT %s, 'background', %s, '{}', 'durable', %s, %s FROM generate_series(1, %s) RETURNING id",
        (DEV_TENANT_ID, TYPE, max_attempts, status, n),
    ).fetchall()
    return [row[0] for row in rows]


def _claim(conn: Conn, worker_id: uuid.UUID, limit: int = 10) -> list[Claimed]:
    return run_sync(conn, outcomes.claim(worker_id=worker_id, types=[TYPE], limit=limit))


def _record(conn: Conn, worker_id: uuid.UUID, refs: list[JobRef], kind: str) -> outcomes.Recorded:
    refs = sorted(refs, key=lambda r: r.id)
    return run_sync(
        conn,
        outcomes.record(
            worker_id=worker_id,
            ids=[r.id for r in refs],
            tiers=[r.tier.value for r in refs],
            attempts=[r.attempt for r in refs],
            kinds=[kind] * len(refs),
            results=['{"ok": true}' if kind == "complete" else None] * len(refs),
            errors=[None if kind == "complete" else '{"type": "E", "message": "m"}'] * len(refs),
            delays=[0.0] * len(refs),
        ),
    )


def _status(conn: Conn, job_id: uuid.UUID) -> str:
    row = conn.execute("SELECT status FROM jobkeeper.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    status: str = row[0]
    return status


def test_claim_returns_claimed_jobs_with_their_attempt(conn: Conn) -> None:
    ids = _jobs(conn, 3)
    worker_id = uuid.uuid4()
    claimed = _claim(conn, worker_id, limit=2)
    assert len(claimed) == 2
    assert {c.job.id for c in claimed} <= set(ids)
    assert all(c.ref == JobRef(c.job.id, c.job.tier, 1) for c in claimed)
    assert all(_status(conn, c.job.id) == "processing" for c in claimed)


def test_record_writes_outcomes_and_names_finished_parents(conn: Conn) -> None:
    _jobs(conn, 2)
    worker_id = uuid.uuid4()
    claimed = _claim(conn, worker_id)
    parent, other = sorted((c.ref for c in claimed), key=lambda r: r.id)
    conn.execute("UPDATE jobkeeper.jobs SET has_dependents = true WHERE id = %s", (parent.id,))
    recorded = _record(conn, worker_id, [parent, other], "complete")
    assert sorted(row[0] for row in recorded.written) == [parent.id, other.id]
    assert recorded.parents == [parent.id]
    assert _status(conn, parent.id) == _status(conn, other.id) == "completed"


def test_record_leaves_jobs_another_worker_holds(conn: Conn) -> None:
    _jobs(conn, 1)
    (claimed,) = _claim(conn, uuid.uuid4())
    recorded = _record(conn, uuid.uuid4(), [claimed.ref], "complete")
    assert recorded.written == []
    assert recorded.parents == []
    assert _status(conn, claimed.job.id) == "processing"


def test_a_retried_job_is_no_parent_to_settle(conn: Conn) -> None:
    _jobs(conn, 1)
    worker_id = uuid.uuid4()
    (claimed,) = _claim(conn, worker_id)
    conn.execute("UPDATE jobkeeper.jobs SET has_dependents = true WHERE id = %s", (claimed.job.id,))
    recorded = _record(conn, worker_id, [claimed.ref], "retry")
    assert [row[1] for row in recorded.written] == ["pending"]
    assert recorded.parents == []


def test_settle_cancels_the_waiting_children_of_a_failed_parent(conn: Conn) -> None:
    _jobs(conn, 1, max_attempts=1)
    worker_id = uuid.uuid4()
    (claimed,) = _claim(conn, worker_id)
    (child,) = _jobs(conn, 1, status="waiting")
    conn.execute(
        "INSERT INTO jobkeeper.job_dependencies (tenant_id, job_id, depends_on) VALUES (%s, %s, %s)",
        (DEV_TENANT_ID, child, claimed.job.id),
    )
    conn.execute("UPDATE jobkeeper.jobs SET has_dependents = true WHERE id = %s", (claimed.job.id,))
    recorded = _record(conn, worker_id, [claimed.ref], "fail")
    assert recorded.parents == [claimed.job.id]
    run_sync(conn, dependencies.settle(recorded.parents))
    assert _status(conn, child) == "cancelled"


def test_record_progress_only_touches_this_workers_jobs(conn: Conn) -> None:
    _jobs(conn, 1)
    worker_id = uuid.uuid4()
    (claimed,) = _claim(conn, worker_id)
    for who, progress in ((uuid.uuid4(), '{"done": 1}'), (worker_id, '{"done": 2}')):
        run_sync(
            conn,
            outcomes.record_progress(
                worker_id=who, ids=[claimed.job.id], tiers=[claimed.job.tier.value], progress=[progress]
            ),
        )
    row = conn.execute("SELECT progress FROM jobkeeper.jobs WHERE id = %s", (claimed.job.id,)).fetchone()
    assert row is not None
    assert row[0] == {"done": 2}


def test_rescue_stale_returns_fails_and_counts_in_batches(conn: Conn) -> None:
    _jobs(conn, 3)
    _jobs(conn, 1, max_attempts=1)
    claimed = _claim(conn, uuid.uuid4())
    assert len(claimed) == 4
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    later = now[0] + timedelta(minutes=5)
    counts = run_sync(conn, outcomes.rescue_stale(lease_seconds=30, now=later, limit=2))
    assert counts == {"pending": 3, "failed": 1, "cancelled": 0}
    assert run_sync(conn, outcomes.rescue_stale(lease_seconds=30, now=later, limit=2)) == {
        "pending": 0,
        "failed": 0,
        "cancelled": 0,
    }
