"""Scenario 5: a transaction left open (idle, holding a snapshot and an xid) while workers drain.

The open transaction holds back the xmin horizon: every job finished meanwhile leaves dead row versions
that no vacuum may remove, and the claim's index scans wade through them. This is a degradation to
measure and report, not a failure: the test asserts that work goes on in every window, and prints the
throughput and dead tuples per window for docs/reliability.md.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from jobkeeper import Client
from tests.fault.harness import (
    Conn,
    Fleet,
    Producer,
    Summary,
    db_now,
    job,
    pause,
    rate,
    scalar,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants

VARIANTS = [
    pytest.param(10.0, id="short"),
    pytest.param(180.0, id="slow", marks=pytest.mark.slow),
]
WINDOW = 5.0
BASELINE_SECONDS = 3.0
AFTER_SECONDS = 2.0


async def _dead_tuples(db: Conn) -> int:
    return int(
        await scalar(
            db,
            "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'jobkeeper'",
        )
    )


@pytest.mark.parametrize("duration", VARIANTS)
async def test_work_goes_on_under_a_long_idle_transaction(
    db: Conn, fault_db: str, fleet: Fleet, producer_client: Client, summary: Summary, duration: float
) -> None:
    await fleet.start_many(db, 2, "--concurrency", "10", "--batch-size", "10")
    producer = Producer(
        producer_client, lambda n: job("money", f"idle-{n}"), backlog=250, db_url=fault_db
    ).start()
    await pause(1.0 + BASELINE_SECONDS)
    held_at = await db_now(db)
    baseline = await rate(db, held_at - timedelta(seconds=BASELINE_SECONDS), held_at)
    dead_before = await _dead_tuples(db)

    windows: list[tuple[float, int]] = []
    async with await psycopg.AsyncConnection.connect(fault_db) as idle:
        await idle.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        xid = await scalar(idle, "SELECT txid_current()")  # an xid and a snapshot, then idle
        assert int(xid) > 0
        started = await db_now(db)
        while (await db_now(db) - started).total_seconds() < duration - 1e-3:
            await pause(WINDOW)
            end = await db_now(db)
            windows.append((await rate(db, end - timedelta(seconds=WINDOW), end), await _dead_tuples(db)))
        state = await scalar(
            db, "SELECT state FROM pg_stat_activity WHERE pid = %s", (idle.info.backend_pid,)
        )
        assert state == "idle in transaction"
        await idle.rollback()

    released_at = await db_now(db)
    await pause(AFTER_SECONDS)
    after = await rate(db, released_at, released_at + timedelta(seconds=AFTER_SECONDS))
    ids = await producer.stop()
    await wait_until_finished(db, ids, timeout=60, fleet=fleet)
    await fleet.stop_all()
    report = await check_invariants(db, ids)

    assert all(per_second > 0 for per_second, _ in windows), f"work stopped: {windows}"
    last_rate, last_dead = windows[-1]
    summary(
        report.line(
            "5-idle-transaction",
            f"REPEATABLE READ transaction with an xid left idle for {duration:g} s while two workers drain",
            baseline_per_s=baseline,
            per_s_by_window="/".join(f"{r:.0f}" for r, _ in windows),
            dead_tuples_by_window="/".join(str(d) for _, d in windows),
            dead_tuples_before=dead_before,
            degradation_pct=100.0 * (1 - last_rate / baseline),
            after_release_per_s=after,
            dead_tuples_at_end=last_dead,
        )
    )
