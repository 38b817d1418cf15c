"""The report's and the outbox's operations (jobkeeper/store/reports.py, outbox.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from jobkeeper.errors import DatabaseUnavailableError
from jobkeeper.store import outbox, reports, server
from jobkeeper.store.run import run_sync
from jobkeeper.types import DEV_TENANT_ID, Page
from tests.store.support import insert_dead_letter, insert_job


async def test_a_report_is_read_in_one_snapshot_on_a_read_only_connection(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as setup:
        insert_job(setup, status="completed", finished_ago=60)
        insert_dead_letter(setup)
    async with reports.read_only(db_url) as db:
        now = await db.run(server.database_now())
        sections = await db.run(
            reports.collect(
                start=now - timedelta(hours=1),
                end=now + timedelta(seconds=1),
                bucket="hour",
                tenant_id=DEV_TENANT_ID,
                queues=None,
                recent=5,
            )
        )
    assert sum(row["completed"] for row in sections.throughput) == 1
    assert [row["dead"] for row in sections.dead_letters] == [1]
    assert len(sections.recent_dead_letters) == 1
    assert [row["queue"] for row in sections.latency] == ["communication", None]


async def test_an_unreachable_report_database_is_unavailable() -> None:
    with pytest.raises(DatabaseUnavailableError):
        async with reports.read_only("postgresql://nobody@127.0.0.1:1/x", connect_timeout=2):
            pass


def test_the_outbox_lists_kept_messages_newest_first(conn: psycopg.Connection[Any]) -> None:
    ids = [insert_job(conn, job_type="send-sms", status="completed") for _ in range(3)]
    conn.execute('UPDATE jobkeeper.jobs SET result = \'{"transport": "outbox"}\' WHERE id = ANY(%s)', (ids,))
    first = run_sync(conn, outbox.list(["send-sms"], "outbox", None, Page(None, 2)))
    assert len(first) == 2
    last = first[-1]
    after = Page((last["created_at"], last["id"]), 2)
    rest = run_sync(conn, outbox.list(["send-sms"], "outbox", DEV_TENANT_ID, after))
    assert {row["id"] for row in first + rest} == set(ids)
