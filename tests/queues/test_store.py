"""Queue and job-type operations (jobkeeper/store/queues.py) against the real database."""

from __future__ import annotations

from typing import Any

import psycopg

from jobkeeper.store import queues
from jobkeeper.store.run import run_sync
from jobkeeper.types import DEV_TENANT_ID, Tier
from tests.store.support import insert_job


def test_the_catalog_holds_every_queue_and_job_type(conn: psycopg.Connection[Any]) -> None:
    catalog = run_sync(conn, queues.load_catalog())
    assert {"money", "communication", "background"} <= catalog.queues.keys()
    assert catalog.queues["money"].tier is Tier.DURABLE
    assert [q.name for q in run_sync(conn, queues.list_queues())] == sorted(catalog.queues)
    assert {t.name for t in run_sync(conn, queues.list_job_types())} == catalog.job_types.keys()


def test_declare_and_register_job_types(conn: psycopg.Connection[Any]) -> None:
    declared = run_sync(conn, queues.declare_job_type("wp3-type", None, default_queue="background"))
    assert (declared.job_type.queue, declared.created) == ("background", True)
    again = run_sync(conn, queues.declare_job_type("wp3-type", "communication", default_queue="background"))
    assert (again.job_type.queue, again.created) == ("communication", False)
    spec = queues.TypeSpec("wp3-type", None, max_attempts=7, timeout=None, priority=2)
    run_sync(conn, queues.register_job_types([spec], default_queue="background"))
    job_type = run_sync(conn, queues.load_catalog()).job_types["wp3-type"]
    assert (job_type.queue, job_type.max_attempts, job_type.priority) == ("communication", 7, 2)


def test_stats_count_every_queue_or_one(conn: psycopg.Connection[Any]) -> None:
    insert_job(conn)
    insert_job(conn, status="completed")
    every = run_sync(conn, queues.stats(None))
    assert [s.name for s in every] == sorted(s.name for s in every)
    [one] = run_sync(conn, queues.stats(DEV_TENANT_ID, "communication"))
    assert (one.waiting, one.completed, one.tier) == (1, 1, Tier.FAST)
    assert one.measured_at is not None
    assert run_sync(conn, queues.stats(None, "no-such-queue")) == []


def test_counts_stop_at_their_cap(conn: psycopg.Connection[Any]) -> None:
    for _ in range(3):
        insert_job(conn)
    rows = run_sync(conn, queues.counts(None, cap=1, finished_cap=1))
    assert next(r for r in rows if r["name"] == "communication")["waiting"] == 2  # cap + 1: "1+"


def test_pause_and_clean(conn: psycopg.Connection[Any]) -> None:
    paused = run_sync(conn, queues.set_paused("communication", True))
    assert paused is not None
    assert paused.paused
    assert run_sync(conn, queues.set_paused("no-such-queue", True)) is None
    insert_job(conn, status="completed", finished_ago=3600)
    insert_job(conn, status="completed", finished_ago=10)
    deleted = run_sync(
        conn, queues.clean("communication", ["completed"], grace=60, tenant_id=DEV_TENANT_ID, limit=10)
    )
    assert deleted == 1
