"""Scenario 3: `pg_terminate_backend` on the workers' connections, again and again, under load.

Every second, every backend of the test database whose application_name starts with `jobkeeper` is
terminated: each worker's claim, outcome, heartbeat and LISTEN connections and its pool (the maintenance
leader). The test's own enqueuing client is named otherwise and keeps a backlog pending throughout, so the
throughput measured during the storm is the workers'. The workers must reconnect by themselves, LISTEN
again, lose nothing and double no effect.
"""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from jobkeeper import Client, Settings, SyncClient
from tests.fault.harness import (
    Conn,
    Fleet,
    Producer,
    Summary,
    count_status,
    db_now,
    job,
    pause,
    rate,
    recovery_time,
    scalar,
    terminate_backends,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants
from tests.support import declare_types, eventually

VARIANTS = [
    pytest.param(6.0, id="short"),
    pytest.param(60.0, id="slow", marks=pytest.mark.slow),
]
TERMINATE_EVERY = 1.0
BASELINE_SECONDS = 3.0


async def _listening(db: Conn) -> int:
    return int(
        await scalar(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'jobkeeper-worker-listen' AND query LIKE 'LISTEN%%'",
        )
    )


@pytest.mark.parametrize("duration", VARIANTS)
async def test_terminated_backends_are_replaced_and_nothing_is_lost(
    db: Conn, fault_db: str, fleet: Fleet, producer_client: Client, summary: Summary, duration: float
) -> None:
    await fleet.start_many(db, 2, "--concurrency", "10", "--batch-size", "10")
    producer = Producer(
        producer_client,
        lambda n: job("money", f"term-{n}", work=0.05, max_attempts=25),
        backlog=200,
        db_url=fault_db,
    ).start()
    await pause(1.0 + BASELINE_SECONDS)
    storm_at = await db_now(db)
    baseline = await rate(db, storm_at - timedelta(seconds=BASELINE_SECONDS), storm_at)
    terminated = rounds = 0
    backlog: list[int] = []
    while (await db_now(db) - storm_at).total_seconds() < duration:
        terminated += await terminate_backends(db)
        rounds += 1
        backlog.append(await count_status(db, "pending"))
        await pause(TERMINATE_EVERY)
    calm_at = await db_now(db)
    during = await rate(db, storm_at, calm_at)
    # Reported, with a generous bound: on a busy machine the rate drifts for reasons of its own.
    recovered = await recovery_time(fault_db, calm_at, baseline, timeout=60.0)

    async def both_listening() -> bool:
        return await _listening(db) == 2

    await eventually(both_listening, timeout=15, what="both workers to LISTEN again")
    ids = await producer.stop()
    await wait_until_finished(db, ids, timeout=30, fleet=fleet)
    await fleet.stop_all()
    report = await check_invariants(db, ids)
    assert terminated >= rounds * 4, "each round should find the workers' connections back"
    for purpose in ("claim", "outcomes", "heartbeat", "listen"):
        assert fleet.count_in_logs(f"reconnecting the worker's {purpose} connection") >= rounds
    summary(
        report.line(
            "3-terminate-backend",
            f"pg_terminate_backend on every jobkeeper connection every {TERMINATE_EVERY:g} s "
            f"for {duration:g} s",
            rounds=rounds,
            backends_terminated=terminated,
            enqueue_retries=producer.failures,
            baseline_per_s=baseline,
            during_storm_per_s=during,
            min_backlog_during_storm=min(backlog),
            recovery_s=recovered,
        )
    )


async def test_a_client_whose_pooled_connections_were_all_terminated_enqueues_at_once(
    db: Conn, fault_db: str
) -> None:
    """Regression: psycopg_pool tried the dead idle connections one by one, backing off 1 s, 2 s, 4 s…,
    so the first enqueue after a restart or fail-over waited out the acquire timeout (store/pool.py)."""
    declare_types(fault_db, "fault-money", queue="money")  # no worker has registered it yet
    settings = Settings.from_env({}, pool_min=6, pool_max=10, acquire_timeout=3.0)
    async with Client(fault_db, settings=settings) as client:
        await client.pool.wait()
        assert await terminate_backends(db, "jobkeeper") == 6
        began = time.monotonic()
        await client.enqueue("fault-money", {"op": "after-terminate"}, idempotency_key="after-terminate")
        assert time.monotonic() - began < 1.0


def test_a_sync_client_whose_pooled_connections_were_all_terminated_enqueues_at_once(fault_db: str) -> None:
    declare_types(fault_db, "fault-money", queue="money")  # no worker has registered it yet
    settings = Settings.from_env({}, pool_min=6, pool_max=10, acquire_timeout=3.0)
    with SyncClient(fault_db, settings=settings) as client, psycopg.connect(fault_db) as db:
        client.pool.wait()
        terminated = db.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'jobkeeper%'"
        ).fetchone()
        assert terminated == (6,)
        began = time.monotonic()
        client.enqueue("fault-money", {"op": "after-terminate"}, idempotency_key="after-terminate")
        assert time.monotonic() - began < 1.0
