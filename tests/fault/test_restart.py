"""Scenario 2: PostgreSQL restarted under load, first with a fast shutdown, then with an immediate one
(SIGQUIT to the postmaster: a crash, recovered from the WAL on the next start).

The test runs an embedded server of its own. Two workers drain a steady backlog of durable jobs; their
poll interval is 30 s, so only LISTEN can explain a quick pickup of a job enqueued while they idle. After
each restart the workers must reconnect by themselves and their throughput (completions per second, from
`completed_at`) must be back to at least 90 % of its level before the fault within 30 s.

An API process (`jobkeeper api`) serves throughout, and a probe adds a job through it every 0.1 s: while
the database is away it must answer 503 (never hang, never 500), and it must accept jobs again by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from jobkeeper import Client
from jobkeeper.process.embedded import EmbeddedPostgres
from jobkeeper.store import migrate
from tests.fault.harness import (
    ApiProbe,
    ApiProcess,
    Fleet,
    Producer,
    Summary,
    connect,
    db_now,
    job,
    pause,
    producer_settings,
    rate,
    recovery_time,
    scalar,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants
from tests.fault.ledger import SCHEMA
from tests.support import eventually, wait_for

WORKER = ("--concurrency", "10", "--batch-size", "10")
IDLE_POLL = {"JOBKEEPER_POLL_INTERVAL": "30"}
BASELINE_SECONDS = 2.0


@pytest.fixture
def server(server_dir: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(server_dir / "data")
    yield embedded
    embedded.stop()


def _crash(server: EmbeddedPostgres) -> None:
    postmaster = int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])
    os.kill(postmaster, signal.SIGQUIT)

    def gone() -> bool:
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=30, what="the postmaster to exit")


def _restart(server: EmbeddedPostgres, mode: str) -> str:
    if mode == "fast":
        server.stop()
    else:
        _crash(server)
    return server.start()


async def _listening(url: str) -> int:
    async with await connect(url) as db:
        return int(
            await scalar(
                db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'jobkeeper-worker-listen' AND query LIKE 'LISTEN%%'",
            )
        )


async def test_workers_recover_from_postgres_restarts_under_load(
    server: EmbeddedPostgres, tmp_path: Path, summary: Summary
) -> None:
    url = server.start()
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    fleet = Fleet(url, tmp_path)
    api = ApiProcess(url, tmp_path)
    numbers: dict[str, float] = {}
    during: dict[str, dict[int, int]] = {}
    try:
        async with Client(url, settings=producer_settings()) as client:
            async with await connect(url) as db:
                await fleet.start_many(db, 2, *WORKER, env=IDLE_POLL)
            api.start()
            await api.ready()
            api_probe = ApiProbe(api).start()
            producer = Producer(
                client,
                lambda n: job("money", f"restart-{n}", work=0.05, max_attempts=25),
                backlog=500,
                db_url=url,
            ).start()
            await pause(2.0)  # warm-up: the backlog fills and the workers reach their pace
            for mode in ("fast", "immediate"):
                await pause(BASELINE_SECONDS)
                async with await connect(url) as db:
                    fault_at = await db_now(db)
                    baseline = await rate(db, fault_at - timedelta(seconds=BASELINE_SECONDS), fault_at)
                began = time.monotonic()
                assert await asyncio.to_thread(_restart, server, mode) == url
                downtime = time.monotonic() - began
                async with await connect(url) as db:
                    back_at = await db_now(db)
                recovered = await recovery_time(url, back_at, baseline, timeout=30.0)
                numbers[f"{mode}_baseline_per_s"] = baseline
                numbers[f"{mode}_downtime_s"] = downtime
                numbers[f"{mode}_recovery_after_restart_s"] = recovered
                numbers[f"{mode}_recovery_from_fault_s"] = (back_at - fault_at).total_seconds() + recovered
                restarted = began + downtime

                async def api_back(restarted: float = restarted) -> bool:
                    return api_probe.first_success_after(restarted) is not None

                await eventually(api_back, timeout=30, what=f"the API to accept jobs again after {mode}")
                numbers[f"{mode}_api_back_after_restart_s"] = api_probe.first_success_after(restarted) or 0.0
                during[mode] = api_probe.statuses_since(began)
                await eventually(lambda: _all_listening(url), timeout=15, what="both workers to LISTEN again")

            ids = [*await producer.stop(), *await api_probe.stop()]
            answers = {status for _, status in api_probe.answers}
            assert answers <= {200, 201, 503}, f"the API answered {during}:\n{api.log_tail()}"
            assert await api.stop() == 0, api.log_tail()
            async with await connect(url) as db:
                await wait_until_finished(db, ids, timeout=30, fleet=fleet)
                # Idle now, polling only every 30 s: a job picked up within a second was woken by NOTIFY.
                await pause(1.0)
                pickups = []
                for n in range(3):
                    probe = await client.enqueue(
                        "fault-money", {"op": f"listen-{n}"}, idempotency_key=f"l-{n}"
                    )
                    await wait_until_finished(db, [probe.id], timeout=10, fleet=fleet)
                    started = await scalar(
                        db, "SELECT started_at - created_at FROM jobkeeper.jobs WHERE id = %s", (probe.id,)
                    )
                    pickups.append(started.total_seconds())
                    ids.append(probe.id)
                assert max(pickups) < 2.0, f"pickups {pickups}: LISTEN is not working after the restarts"
                await fleet.stop_all()
                report = await check_invariants(db, ids)
    finally:
        fleet.kill_all()
        api.kill()
    summary(
        report.line(
            "2-postgres-restart",
            "PostgreSQL fast shutdown + restart, then immediate shutdown (SIGQUIT) + restart, under load",
            enqueue_retries=producer.failures,
            api_jobs=len(api_probe.acknowledged),
            api_answers="/".join(f"{m}:{_statuses(c)}" for m, c in during.items()),
            reconnects=fleet.count_in_logs("reconnecting the worker's"),
            listen_pickup_max_s=max(pickups),
            **numbers,
        )
    )


async def _all_listening(url: str) -> bool:
    return await _listening(url) == 2


def _statuses(counts: dict[int, int]) -> str:
    return ",".join(f"{n}x{status}" for status, n in sorted(counts.items()))
