"""Alert operations (jobkeeper/store/alerts.py) against the real database, in a rolled-back transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobkeeper.store import alerts
from jobkeeper.store.run import run_sync


def _raise(conn: psycopg.Connection[Any], now: datetime, cooldown: float = 900.0) -> list[dict[str, Any]]:
    return run_sync(
        conn,
        alerts.insert_many(
            rules=["store_rule", "store_rule"],
            queues=["money", None],
            severities=["warning", "critical"],
            messages=["a", "b"],
            details=[{"depth": 1}, {}],
            cooldowns=[cooldown, cooldown],
            now=now,
        ),
    )


@pytest.fixture
def conn(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The rolled-back connection with its transaction begun (an operation's own transaction is then a
    savepoint in it)."""
    conn.execute("SELECT 1")
    return conn


def test_insert_respects_the_cooldown_and_list_get_acknowledge_prune(conn: psycopg.Connection[Any]) -> None:
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    raised = _raise(conn, long_ago)
    assert [(r["queue"], r["details"]) for r in raised] == [("money", {"depth": 1}), (None, {})]
    assert _raise(conn, long_ago + timedelta(seconds=60)) == []  # within the cooldown
    ids = [r["id"] for r in raised]
    listed = run_sync(conn, alerts.list(rule="store_rule", limit=10))
    assert {a.id for a in listed} == set(ids)
    critical = run_sync(conn, alerts.list(rule="store_rule", severity="critical", limit=10))
    assert [a.id for a in critical] == [ids[1]]
    newest = listed[0]
    assert (
        run_sync(conn, alerts.list(rule="store_rule", before=(newest.created_at, newest.id), limit=10))
        == (listed[1:])
    )
    assert run_sync(conn, alerts.get(ids[0])) is not None
    assert run_sync(conn, alerts.get(uuid.uuid4())) is None

    first = run_sync(conn, alerts.acknowledge(ids[0], by="ops@host"))
    assert first is not None
    assert first.acknowledged_by == "ops@host"
    again = run_sync(conn, alerts.acknowledge(ids[0], by="someone-else"))
    assert again == first  # the first acknowledgement stays
    assert run_sync(conn, alerts.acknowledge(uuid.uuid4(), by="x")) is None
    assert [a.id for a in run_sync(conn, alerts.list(rule="store_rule", acknowledged=False, limit=10))] == [
        ids[1]
    ]

    run_sync(conn, alerts.record_delivery(ids[1], channel="log", ok=False, error="boom"))
    delivered = run_sync(conn, alerts.get(ids[1]))
    assert delivered is not None
    assert delivered.deliveries[0]["error"] == "boom"

    # Only acknowledged alerts past the horizon go.
    assert run_sync(conn, alerts.prune(older_than=60.0, now=None, limit=100)) >= 1
    assert run_sync(conn, alerts.get(ids[0])) is None
    assert run_sync(conn, alerts.get(ids[1])) is not None
