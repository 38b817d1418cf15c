"""Celery's measurements, run with the anchors' virtual environment (bench/.anchors-venv).

Settings: Redis broker (database 11 of the local Redis, emptied before each run), no result backend
(`task_ignore_result`), the solo pool (one task at a time per process, no child processes), and
`worker_prefetch_multiplier=64`, as Celery's optimizing guide advises for many short tasks ("you want this
number to be large. Say 64, or 128"). Acknowledgement early (the default). Two processes = two solo workers.

Redis keeps no timestamps, so each worker records its tasks' start and end (time.time(), the machine's
clock) in-process with Celery's task_prerun/task_postrun signals (bench/common.py FileRecorder); a job's
enqueue time travels in its arguments.

    bench/.anchors-venv/bin/python bench/anchor_celery.py --redis redis://127.0.0.1:6379/11
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import celery
import redis
from celery import Celery
from celery.signals import task_postrun, task_prerun

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    FileRecorder,
    Harness,
    ProcessWatch,
    Sample,
    emit,
    paced_send,
    percentile,
    read_recorders,
    sizes,
)

PREFETCH_MULTIPLIER = 64
QUEUE = "bench"

app = Celery("bench")
app.conf.update(
    broker_url=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11"),
    task_ignore_result=True,
    worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(sent_at: float | None = None) -> None:
    return None


def worker() -> None:
    recorder = FileRecorder(os.environ["BENCH_RECORD_DIR"])

    @task_prerun.connect(weak=False)
    def started(task_id: str, args: Any = None, kwargs: Any = None, **_: Any) -> None:
        recorder.started(task_id, (kwargs or {}).get("sent_at"))

    @task_postrun.connect(weak=False)
    def finished(task_id: str, **_: Any) -> None:
        recorder.finished(task_id)

    app.worker_main(["worker", "--pool=solo", "--loglevel=WARNING", "-n", f"bench{os.getpid()}@%h"])


class Bench(Harness):
    system = "celery"

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        super().__init__(args.runs, args.only)
        self.url = url
        self.sizes = sizes(args.quick)
        if args.drain_jobs:
            self.sizes["drain"] = args.drain_jobs
        self.redis = redis.Redis.from_url(url)

    def reset(self) -> None:
        self.redis.flushdb()

    def start_workers(self, count: int, record: str) -> list[Any]:
        env = dict(os.environ, BENCH_RECORD_DIR=record, BENCH_REDIS=self.url)
        return self.start_script_workers(__file__, count, ["--redis", self.url], env=env)

    async def enqueue_one(self) -> Sample:
        self.reset()
        n = self.sizes["enqueue_one"]
        started = time.perf_counter()
        for _ in range(n):
            noop.delay()
        seconds = time.perf_counter() - started
        self.reset()
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    async def wait_count(self, record: str, n: int, timeout: float, processes: list[Any]) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive(processes)
            merged = read_recorders(record)
            if merged["count"] >= n:
                return merged
            if time.monotonic() > deadline:
                raise TimeoutError(f"{merged['count']} of {n} tasks done")
            await asyncio.sleep(0.1)

    async def drain(self, workers: int) -> Sample:
        self.reset()
        n = self.sizes["drain"]
        started = time.perf_counter()
        for _ in range(n):
            noop.delay()
        enqueue_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="celery-bench-") as record:
            processes = self.start_workers(workers, record)
            watch = ProcessWatch([p.pid for p in processes]).start()
            try:
                merged = await self.wait_count(record, n, timeout=900, processes=processes)
                figures = watch.stop()
            finally:
                self.stop_workers(processes)
        span = merged["last_end"] - merged["first_start"]
        return {
            "jobs": n,
            "workers": workers,
            "seconds": span,
            "jobs_per_s": n / span,
            "enqueue_seconds": enqueue_seconds,
            **figures,
        }

    async def pickup(self, rate: float | None) -> Sample:
        self.reset()
        with tempfile.TemporaryDirectory(prefix="celery-bench-") as record:
            processes = self.start_workers(1, record)
            try:
                await asyncio.sleep(4.0)  # started, connected, idle

                def many(count: int) -> None:
                    for _ in range(count):
                        noop.delay(sent_at=time.time())

                sent, offered = await paced_send(
                    lambda: noop.delay(sent_at=time.time()),
                    many,
                    jobs=self.sizes["pickup_idle"],
                    rate=rate,
                    seconds=self.sizes["pickup_load_seconds"],
                )
                merged = await self.wait_count(record, sent, timeout=120, processes=processes)
            finally:
                self.stop_workers(processes)
        delays = merged["delays"]
        return {
            "jobs": sent,
            "offered_per_s": offered,
            "target_per_s": rate,
            "p50_ms": (percentile(delays, 0.5) or 0.0) * 1000,
            "p99_ms": (percentile(delays, 0.99) or 0.0) * 1000,
            "clock": "client time.time() at send -> worker time.time() at task_prerun",
        }

    async def run(self) -> None:
        await self.measure("enqueue_one", self.enqueue_one)
        await self.measure("drain_1", lambda: self.drain(1))
        await self.measure("drain_2", lambda: self.drain(2))
        await self.measure("pickup_idle", lambda: self.pickup(None))
        self.reset()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    parser.add_argument("--drain-jobs", type=int, default=None)
    args = parser.parse_args()
    app.conf.broker_url = args.redis
    if args.worker:
        worker()
        return
    bench = Bench(args.redis, args)
    started = time.time()
    try:
        asyncio.run(bench.run())
    finally:
        emit(
            bench.results,
            {
                "system": "celery",
                "version": celery.__version__,
                "redis_py": redis.__version__,
                "started": started,
                "seconds": time.time() - started,
                "sizes": bench.sizes,
                "settings": {
                    "broker": "Redis (local, database 11)",
                    "pool": "solo (one process per worker, one task at a time)",
                    "worker_prefetch_multiplier": PREFETCH_MULTIPLIER,
                    "results": "ignored (no backend)",
                    "acks": "early (default)",
                },
            },
        )


if __name__ == "__main__":
    main()
