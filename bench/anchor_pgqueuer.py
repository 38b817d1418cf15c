"""PgQueuer's measurements, run with the anchors' virtual environment (bench/.anchors-venv).

Settings: the asyncpg driver (PgQueuer's fastest, and its benchmark tool's default), `batch_size=100`,
unlimited concurrency (`max_concurrent_tasks` unset), the default `durable` schema (`pgq install`), an
async no-op entrypoint with an empty payload, as PgQueuer's own `tools/benchmark.py` drain strategy does.
Times come from `pgqueuer_log` (created, database clock): `queued`, `picked` and `successful` rows.

    bench/.anchors-venv/bin/python bench/anchor_pgqueuer.py --dsn postgresql://postgres@127.0.0.1/pgqueuer_bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from pgqueuer import PgQueuer, Queries
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Harness, ProcessWatch, Sample, emit, paced_send, sizes  # noqa: E402

ENTRYPOINT = "noop"
BATCH_SIZE = 100

DRAIN_STATS = """
SELECT
  (SELECT min(created) FROM pgqueuer_log WHERE status = 'picked' AND created >= $1) AS first_pick,
  (SELECT max(created) FROM pgqueuer_log WHERE status = 'successful' AND created >= $1) AS last_done,
  (SELECT count(*) FROM pgqueuer_log WHERE status = 'successful' AND created >= $1) AS done
"""

COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"

PICKUP_STATS = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p.created - q.created)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM p.created - q.created)),
       count(*)
FROM pgqueuer_log q
JOIN pgqueuer_log p ON p.job_id = q.job_id AND p.status = 'picked'
WHERE q.status = 'queued' AND q.created >= $1
"""


async def worker(dsn: str) -> None:
    connection = await asyncpg.connect(dsn=dsn)
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        return None

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pgq.shutdown.set)
    await pgq.run(batch_size=BATCH_SIZE)


class Bench(Harness):
    system = "pgqueuer"

    def __init__(self, dsn: str, args: argparse.Namespace) -> None:
        super().__init__(args.runs, args.only)
        self.dsn = dsn
        self.sizes = sizes(args.quick)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(dsn=self.dsn)

    async def setup(self) -> None:
        conn = await self.connect()
        try:
            queries = Queries(AsyncpgDriver(conn))
            if not await queries.schema_is_installed():
                await queries.install()
        finally:
            await conn.close()

    async def reset(self) -> None:
        conn = await self.connect()
        try:
            await conn.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")
        finally:
            await conn.close()

    def start_workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        return self.start_script_workers(__file__, count, ["--dsn", self.dsn])

    async def enqueue_one(self) -> Sample:
        await self.reset()
        n = self.sizes["enqueue_one"]
        conn = await self.connect()
        try:
            queries = Queries(AsyncpgDriver(conn))
            started = time.perf_counter()
            for _ in range(n):
                await queries.enqueue(ENTRYPOINT, b"", 0)
            seconds = time.perf_counter() - started
        finally:
            await conn.close()
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    async def enqueue_bulk(self) -> Sample:
        await self.reset()
        n = self.sizes["enqueue_bulk"]
        conn = await self.connect()
        try:
            queries = Queries(AsyncpgDriver(conn))
            started = time.perf_counter()
            await queries.enqueue([ENTRYPOINT] * n, [b""] * n, [0] * n)
            seconds = time.perf_counter() - started
        finally:
            await conn.close()
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    async def drain(self, workers: int) -> Sample:
        await self.reset()
        n = self.sizes["drain"]
        conn = await self.connect()
        try:
            queries = Queries(AsyncpgDriver(conn))
            since = await conn.fetchval("SELECT now()")
            await queries.enqueue([ENTRYPOINT] * n, [b""] * n, [0] * n)
            commits0 = await conn.fetchval(COMMITS)
            processes = self.start_workers(workers)
            watch = ProcessWatch([p.pid for p in processes]).start()
            try:
                deadline = time.monotonic() + 600
                while True:
                    self.check_alive(processes)
                    row = await conn.fetchrow(DRAIN_STATS, since)
                    if row["done"] >= n:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{row['done']} of {n} jobs done")
                    await asyncio.sleep(0.25)  # as jobkeeper's drain poll
                figures = watch.stop()
            finally:
                self.stop_workers(processes)
            await asyncio.sleep(0.6)
            commits1 = await conn.fetchval(COMMITS)
            row = await conn.fetchrow(DRAIN_STATS, since)
        finally:
            await conn.close()
        span = (row["last_done"] - row["first_pick"]).total_seconds()
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
        conn = await self.connect()
        try:
            queries = Queries(AsyncpgDriver(conn))
            await asyncio.sleep(2.0)  # started, listening, idle
            since = await conn.fetchval("SELECT now()")
            sent, offered = await paced_send(
                lambda: queries.enqueue(ENTRYPOINT, b"", 0),
                lambda count: queries.enqueue([ENTRYPOINT] * count, [b""] * count, [0] * count),
                jobs=self.sizes["pickup_idle"],
                rate=rate,
                seconds=self.sizes["pickup_load_seconds"],
            )
            deadline = time.monotonic() + 120
            while (await conn.fetchrow(DRAIN_STATS, since))["done"] < sent:
                self.check_alive(processes)
                if time.monotonic() > deadline:
                    raise TimeoutError("pickup jobs did not finish")
                await asyncio.sleep(0.1)
            p50, p99, _ = await conn.fetchrow(PICKUP_STATS, since)
        finally:
            await conn.close()
            self.stop_workers(processes)
        return {
            "jobs": sent,
            "offered_per_s": offered,
            "target_per_s": rate,
            "p50_ms": p50 * 1000,
            "p99_ms": p99 * 1000,
        }

    async def run(self) -> None:
        await self.setup()
        await self.measure("enqueue_one", self.enqueue_one)
        await self.measure("enqueue_bulk", self.enqueue_bulk)
        drain1 = await self.measure("drain_1", lambda: self.drain(1))
        await self.measure("drain_2", lambda: self.drain(2))
        await self.measure("pickup_idle", lambda: self.pickup(None))
        rates = [s["jobs_per_s"] for s in drain1 if "jobs_per_s" in s]
        if rates:
            half = 0.5 * statistics.median(rates)
            await self.measure("pickup_load", lambda: self.pickup(half))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    args = parser.parse_args()
    if args.worker:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(worker(args.dsn))
        return
    bench = Bench(args.dsn, args)
    started = time.time()
    try:
        asyncio.run(bench.run())
    finally:
        import pgqueuer

        emit(
            bench.results,
            {
                "system": "pgqueuer",
                "version": pgqueuer.__version__,
                "asyncpg": asyncpg.__version__,
                "started": started,
                "seconds": time.time() - started,
                "sizes": bench.sizes,
                "settings": {
                    "driver": "asyncpg",
                    "batch_size": BATCH_SIZE,
                    "max_concurrent_tasks": "unset (unlimited)",
                    "durability": "durable (pgq install default)",
                    "payload": "empty bytes",
                },
            },
        )


if __name__ == "__main__":
    main()
