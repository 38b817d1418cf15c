"""Dead-letter operations (jobkeeper/store/dead_letters.py) against the real database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from jobkeeper.dead_letters import DeadLetterFilter
from jobkeeper.store import dead_letters
from jobkeeper.store.run import run_sync
from jobkeeper.types import JobStatus, Page
from tests.store.support import insert_dead_letter


def test_list_get_count(conn: psycopg.Connection[Any]) -> None:
    first = insert_dead_letter(conn)
    second = insert_dead_letter(conn, queue="money")
    every = DeadLetterFilter()
    listed = run_sync(conn, dead_letters.list(every, Page(None, 10)))
    assert {d.id for d in listed} == {first, second}
    [newest] = run_sync(conn, dead_letters.list(every, Page(None, 1)))
    [older] = run_sync(conn, dead_letters.list(every, Page((newest.failed_at, newest.id), 1)))
    assert {newest.id, older.id} == {first, second}
    letter = run_sync(conn, dead_letters.get(first))
    assert letter is not None
    assert letter.last_error == "Boom"
    assert run_sync(conn, dead_letters.count(DeadLetterFilter(queue="money"))) == 1


def test_replay_then_purge(conn: psycopg.Connection[Any]) -> None:
    ident = insert_dead_letter(conn)
    [job] = run_sync(conn, dead_letters.replay(DeadLetterFilter(ids=[ident]), 10))
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
    assert run_sync(conn, dead_letters.replay(DeadLetterFilter(ids=[ident]), 10)) == []
    letter = run_sync(conn, dead_letters.get(ident))
    assert letter is not None
    assert letter.replayed_job_id == job.id
    assert run_sync(conn, dead_letters.purge(DeadLetterFilter(replayed=True))) == [ident]
    assert run_sync(conn, dead_letters.get(ident)) is None


def test_what_the_dead_letter_alert_reads(conn: psycopg.Connection[Any]) -> None:
    insert_dead_letter(conn, queue="money")
    insert_dead_letter(conn)  # not a durable queue
    assert run_sync(conn, dead_letters.watermark()) is None
    [money] = run_sync(conn, dead_letters.since("-infinity"))
    assert (money["queue"], money["dead"]) == ("money", 1)
    assert run_sync(conn, dead_letters.since(datetime.now(UTC).replace(year=2999))) == []
