"""`jobkeeper alerts list|ack` and `jobkeeper workers list` against a real database."""

from __future__ import annotations

import uuid

import psycopg

from jobkeeper.store import alerts
from jobkeeper.store.run import run_sync
from tests.cli.conftest import Run, handlers, output_json, query, running_worker

MISSING = "5a1d0c1e-0000-4000-8000-000000000000"


def _raise_alerts(db_url: str) -> list[uuid.UUID]:
    """Two alerts written by the leader's own statement."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = run_sync(
            conn,
            alerts.insert_many(
                rules=["queue_depth", "no_workers"],
                queues=["money", None],
                severities=["warning", "critical"],
                messages=["money: 60 jobs waiting (limit 50)", "no live worker for 120 s"],
                details=[{"depth": 60}, {}],
                cooldowns=[900.0, 900.0],
            ),
        )
    return [row["id"] for row in rows]


def test_alerts_list_and_ack(run: Run, db_url: str) -> None:
    depth, no_workers = _raise_alerts(db_url)
    listed = output_json(run("alerts", "list", "--json"))
    assert {a["rule"] for a in listed} == {"queue_depth", "no_workers"}
    assert [a["id"] for a in output_json(run("alerts", "list", "--severity", "critical", "--json"))] == [
        str(no_workers)
    ]
    assert [a["rule"] for a in output_json(run("alerts", "list", "--queue", "money", "--json"))] == [
        "queue_depth"
    ]
    table = run("alerts", "list")
    assert table.exit_code == 0
    assert "money: 60 jobs waiting" in table.stdout

    acked = output_json(run("alerts", "ack", str(depth), "--by", "ann", "--json"))
    assert (acked[0]["id"], acked[0]["acknowledged_by"]) == (str(depth), "ann")
    assert query(db_url, "SELECT acknowledged_by FROM jobkeeper.alert_history WHERE id = %s", (depth,)) == [
        ("ann",)
    ]
    assert (
        output_json(run("alerts", "ack", str(depth), "--by", "bob", "--json"))[0]["acknowledged_by"] == "ann"
    )
    assert [a["id"] for a in output_json(run("alerts", "list", "--unacknowledged", "--json"))] == [
        str(no_workers)
    ]
    assert [a["id"] for a in output_json(run("alerts", "list", "--acknowledged", "--json"))] == [str(depth)]
    partly = run("alerts", "ack", str(no_workers), MISSING)
    assert partly.exit_code == 1
    assert f"no alert {MISSING}" in partly.stderr
    assert query(
        db_url, "SELECT acknowledged_at IS NOT NULL FROM jobkeeper.alert_history WHERE id = %s", (no_workers,)
    ) == [(True,)]
    assert run("alerts", "ack", "x").exit_code == 2
    assert run("alerts", "ack").exit_code == 2


def test_workers_list(run: Run, db_url: str) -> None:
    assert output_json(run("workers", "list", "--json")) == []
    with running_worker(db_url, handlers(), queues=["background"], concurrency=3) as worker:
        listed = output_json(run("workers", "list", "--json"))
        table = run("workers", "list")
    assert [(w["id"], w["queues"], w["concurrency"], w["running"]) for w in listed] == [
        (str(worker.id), ["background"], 3, 0)
    ]
    assert 0 <= listed[0]["heartbeat_age_seconds"] < 30
    assert sorted(listed[0]["job_types"]) == ["boom", "echo", "slow"]
    assert table.exit_code == 0
    assert "0/3" in table.stdout
    assert "background" in table.stdout
    assert output_json(run("workers", "list", "--json")) == []  # stopped: no longer live
    assert run("workers", "list", "--max-age", "soon").exit_code == 2
