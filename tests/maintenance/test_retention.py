from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from jobkeeper import Client
from jobkeeper.dead_letters import DeadLetterFilter
from jobkeeper.maintenance.retention import Horizons, prune, snapshot
from tests.maintenance.support import sql
from tests.payloads import VALID, unique


async def _now(pool: AsyncConnectionPool[Any]) -> Any:
    return (await sql(pool, "SELECT now()"))[0][0]


async def test_prunes_old_finished_jobs_in_batches_and_keeps_what_must_stay(
    client: Client, pool: AsyncConnectionPool[Any]
) -> None:
    old_done = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", n)} for n in range(25)]
    )
    keyed = await client.enqueue(
        "refund-process", VALID["refund-process"] | {"transactionId": "tx_1"}
    )  # live 90-day key
    cancelled = await client.enqueue("send-email", unique("send-email", 25))
    failed_dead = await client.enqueue("send-email", unique("send-email", 26))
    pending = await client.enqueue("send-email", unique("send-email", 27))
    ids = [j.id for j in old_done] + [keyed.id]
    await sql(
        pool,
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = ANY(%s)",
        (ids,),
    )
    await sql(
        pool,
        "UPDATE jobkeeper.jobs SET status = 'cancelled', completed_at = now() WHERE id = %s",
        (cancelled.id,),
    )
    await sql(
        pool,
        "UPDATE jobkeeper.jobs SET status = 'failed', completed_at = now() WHERE id = %s",
        (failed_dead.id,),
    )
    await sql(
        pool,
        "INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,"
        " max_attempts) SELECT tenant_id, id, queue, type, payload, priority, 3, 3"
        " FROM jobkeeper.jobs WHERE id = %s",
        (failed_dead.id,),
    )
    now = await _now(pool)
    assert (await prune(pool, now=now + timedelta(days=6))).jobs == 0  # younger than the 7-day horizon

    result = await prune(pool, Horizons(), batch=10, now=now + timedelta(days=8))
    assert result.jobs == 26  # 25 completed + 1 cancelled
    assert result.statements >= 3 + 1 + 1 + 1  # 26 rows at 10 per statement, then each other kind
    remaining = {row[0] for row in await sql(pool, "SELECT id FROM jobkeeper.jobs")}
    assert remaining == {keyed.id, failed_dead.id, pending.id}

    # Once its dead letter is purged, the failed job goes too; once its key expires, the keyed job goes.
    await client.dead_letters.purge(DeadLetterFilter())
    later = await prune(pool, now=now + timedelta(days=91))
    assert (later.jobs, later.idempotency_keys) == (2, 1)
    assert {row[0] for row in await sql(pool, "SELECT id FROM jobkeeper.jobs")} == {pending.id}


async def test_prunes_old_metrics_and_acknowledged_alerts(pool: AsyncConnectionPool[Any]) -> None:
    await sql(
        pool,
        "INSERT INTO jobkeeper.alert_history (rule, severity, message, acknowledged_at, acknowledged_by)"
        " VALUES ('queue_depth', 'warning', 'deep', now(), 'ops'),"
        " ('queue_depth', 'warning', 'open', NULL, NULL)",
    )
    assert await snapshot(pool) == 3  # one row per queue
    now = await _now(pool)
    result = await prune(pool, now=now + timedelta(days=31))
    assert (result.queue_metrics, result.alerts) == (3, 1)
    assert await sql(pool, "SELECT message FROM jobkeeper.alert_history") == [("open",)]


async def test_snapshot_counts_per_queue_and_tenant(client: Client, pool: AsyncConnectionPool[Any]) -> None:
    waiting = await client.enqueue_many(
        [{"type": "send-sms", "payload": unique("send-sms", n)} for n in range(4)]
    )
    await client.enqueue("send-sms", unique("send-sms", 4), delay=3600)
    await sql(pool, "UPDATE jobkeeper.jobs SET status = 'processing' WHERE id = %s", (waiting[0].id,))
    await sql(
        pool,
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = ANY(%s)",
        ([waiting[1].id, waiting[2].id],),
    )
    now = await _now(pool)
    await snapshot(pool, window=60, now=now + timedelta(seconds=30))
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT tenant_id, waiting, scheduled, running, completed, throughput_per_minute,"
            " oldest_waiting_seconds FROM jobkeeper.queue_metrics WHERE queue = 'communication'"
            " ORDER BY tenant_id NULLS FIRST"
        )
        rows = await cur.fetchall()
    assert len(rows) == 2  # all tenants, and the development tenant
    overall = rows[0]
    assert overall["tenant_id"] is None
    assert (overall["waiting"], overall["scheduled"], overall["running"], overall["completed"]) == (
        1,
        1,
        1,
        2,
    )
    assert overall["throughput_per_minute"] == 2.0
    assert overall["oldest_waiting_seconds"] == pytest.approx(30, abs=1)
    assert rows[1]["tenant_id"] == waiting[0].tenant_id
    assert rows[1]["waiting"] == 1


async def test_snapshot_with_nothing_to_count(db_url: str, pool: AsyncConnectionPool[Any]) -> None:
    assert await snapshot(pool) == 3
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT sum(waiting + running + completed + dead) FROM jobkeeper.queue_metrics"
        )
        assert await cur.fetchone() == (0,)
