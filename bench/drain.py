"""Drain benchmark: one worker process runs 20,000 no-op jobs; throughput and enqueue→start latency.

    python bench/drain.py [--jobs 20000] [--queue background] [--concurrency 50] [--batch-size 50]

Uses DATABASE_URL, or starts the embedded PostgreSQL (as `jobkeeper up` does) when it is unset; migrates
the schema. Two phases, every time measured by the database clock:

1. backlog: all jobs are enqueued (one `enqueue_many`), then one worker process is started and drains
   them. jobs/s = jobs / (last completed_at - first started_at). Enqueue→start here is mostly the time a
   job waits behind the backlog.
2. steady load: with the worker idle, jobs arrive in small batches at a fixed rate; enqueue→start
   (created_at → started_at) is the wake-up and claim latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from bench_queries import bench_query  # bench/ is sys.path[0] when run as a script

from jobkeeper import Client, JobContext, Settings, Worker
from jobkeeper.process.database import open_database
from jobkeeper.store import migrate
from jobkeeper.worker import Registry

JOB_TYPE = "bench-noop"


async def _noop(payload: Any, ctx: JobContext) -> None:
    return None


async def run_worker(url: str, queue: str, concurrency: int, batch_size: int) -> None:
    registry = Registry()
    registry.task(JOB_TYPE, queue=queue)(_noop)
    settings = Settings.from_env()
    worker = Worker(url, settings=settings, registry=registry, concurrency=concurrency, batch_size=batch_size)
    await worker.run()


async def _stats(client: Client, since: datetime) -> dict[str, Any]:
    async with client.pool.connection() as conn:
        cur = await conn.execute(bench_query("start_latency"), {"type": JOB_TYPE, "since": since})
        row = await cur.fetchone()
    assert row is not None
    names = ("jobs", "completed", "first_started", "last_completed", "p50", "p99")
    return dict(zip(names, row, strict=True))


async def _db_now(client: Client) -> datetime:
    async with client.pool.connection() as conn:
        row = await (await conn.execute(bench_query("database_now"))).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def _wait_completed(client: Client, since: datetime, count: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = await _stats(client, since)
        if stats["completed"] >= count:
            return stats
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {stats['completed']} of {count} jobs completed")
        await asyncio.sleep(0.1)


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _start_worker(url: str, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable, os.path.abspath(__file__), "--worker", url, "--queue", args.queue]
    command += ["--concurrency", str(args.concurrency), "--batch-size", str(args.batch_size)]
    return subprocess.Popen(command)


async def bench(url: str, args: argparse.Namespace) -> None:
    settings = Settings.from_env({})
    async with Client(url, settings=settings) as client:
        await client.catalog(refresh=True)
        tier = (await client.catalog()).queues[args.queue].tier.value
        since = await _db_now(client)
        started = time.perf_counter()
        await client.enqueue_many([{"type": JOB_TYPE, "queue": args.queue} for _ in range(args.jobs)])
        enqueue_seconds = time.perf_counter() - started

        launched = time.perf_counter()
        process = _start_worker(url, args)
        try:
            drained = await _wait_completed(client, since, args.jobs, timeout=600)
            wall = time.perf_counter() - launched

            await asyncio.sleep(0.5)  # let the worker go idle
            steady_since = await _db_now(client)
            batches = args.latency_jobs // args.latency_batch
            for _ in range(batches):
                await client.enqueue_many([{"type": JOB_TYPE, "queue": args.queue}] * args.latency_batch)
                await asyncio.sleep(args.latency_interval)
            steady = await _wait_completed(client, steady_since, batches * args.latency_batch, timeout=120)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)

    span = (drained["last_completed"] - drained["first_started"]).total_seconds()
    offered = args.latency_batch / args.latency_interval
    options = f"concurrency {args.concurrency}, batch {args.batch_size}"
    print(f"database: {'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded PostgreSQL'}")
    print(f"backlog: {args.jobs} no-op jobs in queue {args.queue} ({tier}), one worker process ({options})")
    print(f"  enqueue: {enqueue_seconds:.2f} s ({args.jobs / enqueue_seconds:.0f} jobs/s, one enqueue_many)")
    print(f"  throughput: {args.jobs / span:.0f} jobs/s (first start to last completion, database clock)")
    print(f"  wall time from worker launch: {wall:.2f} s (includes process start-up)")
    print(f"  enqueue->start: p50 {_ms(drained['p50'])}, p99 {_ms(drained['p99'])} (behind the backlog)")
    every = f"{args.latency_batch} every {args.latency_interval * 1000:.0f} ms"
    print(f"steady load: {batches * args.latency_batch} jobs, {every} (~{offered:.0f} jobs/s offered)")
    print(f"  enqueue->start: p50 {_ms(steady['p50'])}, p99 {_ms(steady['p99'])}")


def main() -> None:
    defaults = Settings.from_env({})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--queue", default="background")
    parser.add_argument("--concurrency", type=int, default=defaults.worker_concurrency)
    parser.add_argument("--batch-size", type=int, default=defaults.worker_batch_size)
    parser.add_argument("--latency-jobs", type=int, default=2000)
    parser.add_argument("--latency-batch", type=int, default=10)
    parser.add_argument("--latency-interval", type=float, default=0.01)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_worker(args.worker, args.queue, args.concurrency, args.batch_size))
        return
    settings = Settings.from_env()
    with open_database(settings) as database:
        migrate.upgrade(database.url)
        asyncio.run(bench(database.url, args))


if __name__ == "__main__":
    main()
