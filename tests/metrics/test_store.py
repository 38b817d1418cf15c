"""Metrics operations (jobkeeper/store/metrics.py) against the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from jobkeeper.store import metrics
from jobkeeper.store.run import run_sync
from tests.store.support import insert_dead_letter, insert_job


def test_a_scrape_reads_every_series(conn: psycopg.Connection[Any]) -> None:
    insert_job(conn)
    insert_job(conn, status="completed", finished_ago=1)
    insert_dead_letter(conn)
    read = run_sync(conn, metrics.scrape(window=60, bounds=(0.5, 5.0), worker_max_age=30))
    assert {"money", "communication"} <= read.queues.keys()
    assert "money" in read.shared_queues
    assert next(r for r in read.depth if r["queue"] == "communication")["waiting"] == 1
    assert any(r["status"] == "completed" for r in read.finished)
    assert next(r for r in read.dead_letters if r["queue"] == "communication")["unreplayed"] == 1
    assert read.live_workers == 0


def test_snapshots_are_written_read_and_pruned(conn: psycopg.Connection[Any]) -> None:
    insert_job(conn)
    written = run_sync(conn, metrics.write_snapshot(window=60))
    assert written >= 3  # one per queue at least
    recent = run_sync(conn, metrics.recent(None, 3600))
    assert {r["queue"] for r in recent} >= {"money", "communication"}
    since = datetime.now(UTC) - timedelta(hours=1)
    [point] = run_sync(conn, metrics.history("communication", None, since=since, limit=10))
    assert point["waiting"] == 1
    later = datetime.now(UTC) + timedelta(days=2)
    assert run_sync(conn, metrics.prune(older_than=86400, now=later, limit=1)) == 1


def test_alert_inputs(conn: psycopg.Connection[Any]) -> None:
    insert_job(conn)
    rows = run_sync(conn, metrics.alert_inputs(rate_window=300, worker_lease=30))
    assert next(r for r in rows if r["queue"] == "communication")["depth"] == 1
    assert run_sync(conn, metrics.unhandled_job_types(worker_lease=30)) == []  # no live worker at all
