"""cleanup-old-data runs the retention of the maintenance leader on demand and returns what it deleted."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from jobkeeper import Client
from jobkeeper.processors.cleanup import processor as cleanup
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError
from tests.payloads import unique
from tests.processors.helpers import run, settings

Conn = psycopg.AsyncConnection[Any]


async def test_cleanup_removes_old_rows_and_keeps_the_rest(client: Client, db: Conn, db_url: str) -> None:
    # send-push derives no idempotency key, which would keep a finished job until the key expires.
    old = await client.enqueue_many(
        [{"type": "send-push", "payload": unique("send-push", n)} for n in range(5)]
    )
    recent = await client.enqueue("send-push", unique("send-push", 5))
    pending = await client.enqueue("send-push", unique("send-push", 6))
    await db.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() - interval '10 days'"
        " WHERE id = ANY(%s)",
        ([job.id for job in old],),
    )
    await db.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() - interval '2 days'"
        " WHERE id = %s",
        (recent.id,),
    )
    await db.execute(
        "INSERT INTO jobkeeper.queue_metrics (queue, captured_at, waiting, scheduled, running, completed,"
        " failed, dead, throughput_per_minute)"
        " VALUES ('money', now() - interval '40 days', 0, 0, 0, 0, 0, 0, 0),"
        "        ('money', now(), 0, 0, 0, 0, 0, 0, 0)"
    )

    result = await run(cleanup, settings(database_url=db_url), {})

    assert result["jobs"] == 5
    assert result["queue_metrics"] == 1
    assert result["horizons"]["finished_jobs"] == 7 * 86400
    cur = await db.execute("SELECT id FROM jobkeeper.jobs")
    assert {row[0] for row in await cur.fetchall()} == {recent.id, pending.id}

    # A shorter horizon from the payload (or the settings) reaches the 2-day-old job too.
    again = await run(cleanup, settings(database_url=db_url), {"finished_jobs": 86400, "batch": 1})
    assert again["jobs"] == 1
    assert again["statements"] >= 2
    configured = settings(database_url=db_url, retention_finished_jobs=3600.0)
    assert cleanup.configured_horizons(configured).finished_jobs == 3600.0


@pytest.mark.parametrize(
    "payload",
    [{"finished_jobs": 60}, {"queue_metrics": "a week"}, {"batch": 0}, {"acknowledged_alerts": True}, []],
)
async def test_horizons_below_an_hour_or_malformed_are_refused(payload: Any) -> None:
    with pytest.raises(InvalidPayloadError):
        await run(cleanup, settings(database_url="postgresql://localhost/none"), payload)


async def test_without_a_database_url_cleanup_fails_permanently() -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(cleanup, settings(), {})
    assert "DATABASE_URL" in str(missing.value)
