"""Rate-limiting operations (jobkeeper/store/limiters.py) against the real database, in a rolled-back
transaction."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper.store import limiters
from jobkeeper.store.run import run_sync
from jobkeeper.types import DEV_TENANT_ID


@pytest.fixture
def conn(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The rolled-back connection with its transaction begun (an operation's own transaction is then a
    savepoint in it)."""
    conn.execute("SELECT 1")
    return conn


def test_list_and_update_read_the_limiter_back(conn: psycopg.Connection[Any]) -> None:
    found = {limiter.name: limiter for limiter in run_sync(conn, limiters.list())}
    assert found["stripe"].in_flight == 0
    updated = run_sync(conn, limiters.update("stripe", rate_per_second=7.5, burst=3))
    assert updated is not None
    assert (updated.rate_per_second, updated.burst, updated.max_concurrency) == (7.5, 3, 50)
    assert updated.tokens <= 3
    cleared = run_sync(conn, limiters.update("stripe", clear_max_concurrency=True))
    assert cleared is not None
    assert cleared.max_concurrency is None
    assert run_sync(conn, limiters.update("no-such-limiter", burst=1)) is None


def test_list_waiting_names_the_types_of_each_limiter(conn: psycopg.Connection[Any]) -> None:
    rows = {row["name"]: row for row in run_sync(conn, limiters.list_waiting(DEV_TENANT_ID))}
    assert "send-push" in (rows["webpush"]["job_types"] or [])
    assert rows["webpush"]["waiting"] == 0


def test_tokens_are_taken_given_back_and_taken_in_part(conn: psycopg.Connection[Any]) -> None:
    bucket: dict[str, Any] = {"tenant_id": DEV_TENANT_ID, "key": "store:test", "capacity": 5.0}
    taken = run_sync(conn, limiters.take_tokens(**bucket, refill_per_second=0.001, cost=4.0))
    assert taken is not None
    assert taken["granted"]
    assert taken["remaining"] == 1.0
    refused = run_sync(conn, limiters.take_tokens(**bucket, refill_per_second=0.001, cost=3.0))
    assert refused is not None
    assert not refused["granted"]
    assert refused["retry_after"] > 0
    run_sync(conn, limiters.give_back_tokens(tenant_id=DEV_TENANT_ID, key="store:test", cost=2.0))
    # Three tokens are left: a take of five gets those three.
    assert run_sync(conn, limiters.take_up_to(**bucket, refill_per_second=0.001, cost=5)) == 3
    assert run_sync(conn, limiters.take_up_to(**bucket, refill_per_second=0.001, cost=5)) == 0
    unknown: dict[str, Any] = {"tenant_id": uuid.uuid4(), "key": "store:test", "capacity": 5.0}
    # A tenant that does not exist gets nothing and no bucket, never an error.
    nothing = run_sync(conn, limiters.take_tokens(**unknown, refill_per_second=1.0, cost=1.0))
    assert nothing is not None
    assert (nothing["granted"], nothing["retry_after"]) == (False, None)
