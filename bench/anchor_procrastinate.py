"""Procrastinate's measurements, run with the anchors' virtual environment (bench/.anchors-venv).

Settings: the psycopg 3 connector (`PsycopgConnector`, a pool of 10 connections), an async no-op task,
a worker per process with `concurrency=100` (async jobs run concurrently on one event loop, as its
concurrency how-to describes for I/O-bound tasks), LISTEN/NOTIFY on (the default), jobs kept after
completion (`delete_jobs="never"`, the default). Times come from `procrastinate_events` (`at`, database
clock): `deferred`, `started`, `succeeded`.

    bench/.anchors-venv/bin/python bench/anchor_procrastinate.py \
        --dsn postgresql://postgres@127.0.0.1/procrastinate_bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import procrastinate
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Harness, ProcessWatch, Sample, emit, paced_send, sizes  # noqa: E402

CONCURRENCY = 100
# psycopg_pool's default is 4 connections shared by the 100 concurrent jobs; 10 did better in a trial
# (quick drains of 2,000 jobs: ~115 jobs/s with 4, ~170 with 10, ~170 with 30), so the anchor gets 10.
POOL_SIZE = 10

DRAIN_STATS = """
SELECT
  (SELECT min(at) FROM procrastinate_events WHERE type = 'started' AND at >= %(since)s) AS first_start,
  (SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded' AND at >= %(since)s) AS last_done,
  (SELECT count(*) FROM procrastinate_events WHERE type = 'succeeded' AND at >= %(since)s) AS done
"""

PICKUP_STATS = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at))
FROM procrastinate_events d
JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started'
WHERE d.type = 'deferred' AND d.at >= %(since)s
"""

COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


def make_app(dsn: str) -> tuple[procrastinate.App, Any]:
    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    app = procrastinate.App(connector=connector)

    @app.task(name="noop", queue="default")
    async def noop() -> None:
        return None

    return app, noop


async def worker(dsn: str) -> None:
    app, _ = make_app(dsn)
    async with app.open_async():
        await app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=True)


class Bench(Harness):
    system = "procrastinate"

    def __init__(self, dsn: str, args: argparse.Namespace) -> None:
        super().__init__(args.runs, args.only)
        self.dsn = dsn
        self.sizes = sizes(args.quick)
        if args.drain_jobs:
            self.sizes["drain"] = args.drain_jobs
        self.app, self.task = make_app(dsn)

    async def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cur = await conn.execute(statement, params)  # type: ignore[arg-type]
            return await cur.fetchall() if cur.description else []

    async def setup(self) -> None:
        installed = await self.sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        if not installed[0][0]:
            await self.app.schema_manager.apply_schema_async()

    async def reset(self) -> None:
        await self.sql("TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")

    async def now(self) -> Any:
        return (await self.sql("SELECT now()"))[0][0]

    def start_workers(self, count: int) -> list[Any]:
        return self.start_script_workers(__file__, count, ["--dsn", self.dsn])

    async def enqueue_one(self) -> Sample:
        await self.reset()
        n = self.sizes["enqueue_one"]
        started = time.perf_counter()
        for _ in range(n):
            await self.task.defer_async()
        seconds = time.perf_counter() - started
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    async def enqueue_bulk(self) -> Sample:
        await self.reset()
        n = self.sizes["enqueue_bulk"]
        started = time.perf_counter()
        await self.task.batch_defer_async(*([{}] * n))
        seconds = time.perf_counter() - started
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    async def wait_done(self, since: Any, n: int, timeout: float, processes: Any = ()) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive(processes)
            first, last, done = (await self.sql(DRAIN_STATS, {"since": since}))[0]
            if done >= n:
                return {"first": first, "last": last}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done} of {n} jobs done")
            await asyncio.sleep(0.25)  # as jobkeeper's drain poll

    async def drain(self, workers: int) -> Sample:
        await self.reset()
        n = self.sizes["drain"]
        since = await self.now()
        await self.task.batch_defer_async(*([{}] * n))
        commits0 = (await self.sql(COMMITS))[0][0]
        processes = self.start_workers(workers)
        watch = ProcessWatch([p.pid for p in processes]).start()
        try:
            await self.wait_done(since, n, timeout=900, processes=processes)
            figures = watch.stop()
        finally:
            self.stop_workers(processes)
        await asyncio.sleep(0.6)
        commits1 = (await self.sql(COMMITS))[0][0]
        stats = await self.wait_done(since, n, timeout=10)
        span = (stats["last"] - stats["first"]).total_seconds()
        return {
            "jobs": n,
            "workers": workers,
            "seconds": span,
            "jobs_per_s": n / span,
            "commits_per_job": (commits1 - commits0) / n,
            **figures,
        }

    async def pickup(self, rate: float | None) -> Sample:
        await self.reset()
        processes = self.start_workers(1)
        try:
            await asyncio.sleep(2.5)  # started, listening, idle
            since = await self.now()
            sent, offered = await paced_send(
                lambda: self.task.defer_async(),
                lambda count: self.task.batch_defer_async(*([{}] * count)),
                jobs=self.sizes["pickup_idle"],
                rate=rate,
                seconds=self.sizes["pickup_load_seconds"],
            )
            await self.wait_done(since, sent, timeout=300, processes=processes)
            p50, p99 = (await self.sql(PICKUP_STATS, {"since": since}))[0]
        finally:
            self.stop_workers(processes)
        return {
            "jobs": sent,
            "offered_per_s": offered,
            "target_per_s": rate,
            "p50_ms": p50 * 1000,
            "p99_ms": p99 * 1000,
        }

    async def run(self) -> None:
        async with self.app.open_async():
            await self.setup()
            await self.measure("enqueue_one", self.enqueue_one)
            await self.measure("enqueue_bulk", self.enqueue_bulk)
            drain1 = await self.measure("drain_1", lambda: self.drain(1))
            await self.measure("drain_2", lambda: self.drain(2))
            await self.measure("pickup_idle", lambda: self.pickup(None))
            rates = [s["jobs_per_s"] for s in drain1 if "jobs_per_s" in s]
            if rates and self.load:
                half = 0.5 * statistics.median(rates)
                await self.measure("pickup_load", lambda: self.pickup(half))

    load = False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    parser.add_argument("--drain-jobs", type=int, default=None)
    parser.add_argument("--load", action="store_true", help="also measure pickup under load")
    args = parser.parse_args()
    if args.worker:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(worker(args.dsn))
        return
    bench = Bench(args.dsn, args)
    bench.load = args.load
    started = time.time()
    try:
        asyncio.run(bench.run())
    finally:
        emit(
            bench.results,
            {
                "system": "procrastinate",
                "version": procrastinate.__version__ if hasattr(procrastinate, "__version__") else None,
                "psycopg": psycopg.__version__,
                "started": started,
                "seconds": time.time() - started,
                "sizes": bench.sizes,
                "settings": {
                    "connector": "PsycopgConnector (psycopg 3)",
                    "concurrency": CONCURRENCY,
                    "pool": f"psycopg_pool min_size=max_size={POOL_SIZE}",
                    "listen_notify": True,
                    "delete_jobs": "never (default)",
                },
            },
        )


if __name__ == "__main__":
    main()
