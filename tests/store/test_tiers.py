"""What each durability tier survives (DESIGN §2), proven on a real server crash.

The server is crashed with an immediate shutdown (SIGQUIT to the postmaster: no checkpoint, crash recovery
on the next start), which empties UNLOGGED tables.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jobkeeper import Client, Settings, Tier
from jobkeeper.process.embedded import EmbeddedPostgres
from jobkeeper.store import migrate
from tests.payloads import VALID
from tests.support import wait_for

PAYMENT = VALID["payment-process"]
EMAIL = VALID["send-email"]


@pytest.fixture
def server(server_dir: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(server_dir / "data")
    yield embedded
    embedded.stop()


def _crash(server: EmbeddedPostgres) -> None:
    pid_file = server.pgdata / "postmaster.pid"
    postmaster = int(pid_file.read_text().splitlines()[0])
    os.kill(postmaster, signal.SIGQUIT)

    def gone() -> bool:
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=30, what="the postmaster to exit")


def _wal_flushed_past(url: str, lsn: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
        return bool(row and row[0])


async def test_a_crash_empties_the_ephemeral_tier_and_keeps_the_others(server: EmbeddedPostgres) -> None:
    url = server.start()
    migrate.upgrade(url)
    settings = Settings.from_env({}, pool_min=0, pool_max=2)
    async with Client(url, settings=settings) as client:
        durable = await client.enqueue_many(
            [{"type": "payment-process", "payload": PAYMENT | {"orderId": f"o-{n}"}} for n in range(50)]
        )
        fast = await client.enqueue_many(
            [{"type": "send-email", "payload": EMAIL | {"to": f"u{n}@example.com"}} for n in range(50)]
        )
        ephemeral = await client.enqueue_many(
            [{"type": "generate-report", "payload": {"hours": n + 1}} for n in range(50)]
        )
    assert {j.tier for j in durable} == {Tier.DURABLE}
    assert {j.tier for j in fast} == {Tier.FAST}
    assert {j.tier for j in ephemeral} == {Tier.EPHEMERAL}

    # Fast-tier commits return before their WAL is flushed; the WAL writer flushes it within ~600 ms.
    # Once it has, a crash cannot lose them: wait for that point on the server's own WAL position.
    with psycopg.connect(url) as conn:
        before = conn.execute(
            "SELECT tier, count(*) FROM jobkeeper.jobs GROUP BY tier ORDER BY tier"
        ).fetchall()
        assert before == [("durable", 50), ("ephemeral", 50), ("fast", 50)]
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
    wait_for(lambda: _wal_flushed_past(url, row[0]), what="the WAL writer to flush the fast tier")

    _crash(server)
    url = server.start()
    with psycopg.connect(url) as conn:
        counts: dict[str, int] = dict(
            conn.execute("SELECT tier, count(*) FROM jobkeeper.jobs GROUP BY tier").fetchall()
        )
        # The unlogged partition is reset by recovery, and stays usable.
        assert conn.execute("SELECT count(*) FROM jobkeeper.jobs_ephemeral").fetchone() == (0,)
    assert counts == {"durable": 50, "fast": 50}
    async with Client(url, settings=settings) as client:
        again = await client.enqueue("generate-report", {"hours": 24})
        assert await client.get_job(again.id) == again


async def test_a_key_whose_job_a_crash_took_is_free_again(server: EmbeddedPostgres) -> None:
    url = server.start()
    migrate.upgrade(url)
    settings = Settings.from_env({}, pool_min=0, pool_max=2)
    async with Client(url, settings=settings) as client:
        lost = await client.enqueue("generate-report", {"hours": 1}, idempotency_key="nightly-1")
        kept = await client.enqueue("generate-report", {"hours": 2}, idempotency_key="nightly-2")
        assert (
            await client.enqueue("generate-report", {"hours": 1}, idempotency_key="nightly-1")
        ).deduplicated
    assert lost.tier is Tier.EPHEMERAL
    # The keys are committed asynchronously with their ephemeral jobs: wait for their WAL to be flushed,
    # then crash. Recovery keeps the keys (a logged table) and empties the jobs' unlogged partition.
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
    wait_for(lambda: _wal_flushed_past(url, row[0]), what="the WAL writer to flush the keys")
    _crash(server)
    url = server.start()
    with psycopg.connect(url) as conn:
        keys = conn.execute("SELECT key, job_id FROM jobkeeper.idempotency_keys ORDER BY key").fetchall()
        assert keys == [("nightly-1", lost.id), ("nightly-2", kept.id)]
    async with Client(url, settings=settings) as client:
        again = await client.enqueue("generate-report", {"hours": 1}, idempotency_key="nightly-1")
        assert (again.deduplicated, again.id == lost.id) == (False, False)
        assert await client.get_job(again.id) == again
        # The key now points at the new job: the next enqueue with it is a duplicate of that one.
        repeat = await client.enqueue("generate-report", {"hours": 1}, idempotency_key="nightly-1")
        assert (repeat.id, repeat.deduplicated) == (again.id, True)
        many = await client.enqueue_many(
            [{"type": "generate-report", "idempotency_key": "nightly-2"}, {"type": "generate-report"}]
        )
        assert (many[0].deduplicated, many[0].id == kept.id) == (False, False)
