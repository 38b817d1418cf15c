"""Dramatiq's measurements, run with the anchors' virtual environment (bench/.anchors-venv).

Settings: `RedisBroker` (database 12 of the local Redis, emptied before each run) with its default
middleware, one worker process with 32 threads (`dramatiq.Worker(broker, worker_threads=32)`, as
`dramatiq module --processes 1 --threads 32` runs it, minus the supervisor process), a sync no-op actor.
Two processes = two such workers.

Redis keeps no timestamps, so each worker records its messages' start and end (time.time(), the machine's
clock) in-process with a middleware (before/after_process_message; bench/common.py FileRecorder); a
message's enqueue time travels in its arguments.

    bench/.anchors-venv/bin/python bench/anchor_dramatiq.py --redis redis://127.0.0.1:6379/12
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

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

THREADS = 32


class Record(Middleware):
    def __init__(self, recorder: FileRecorder) -> None:
        self.recorder = recorder

    def before_process_message(self, broker: Any, message: Any) -> None:
        self.recorder.started(message.message_id, message.kwargs.get("sent_at"))

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self.recorder.finished(message.message_id)


broker = RedisBroker(url=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12"))
if os.environ.get("BENCH_RECORD_DIR"):
    broker.add_middleware(Record(FileRecorder(os.environ["BENCH_RECORD_DIR"])))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", max_retries=0)
def noop(sent_at: float | None = None) -> None:
    return None


def worker() -> None:
    runner = dramatiq.Worker(broker, worker_threads=THREADS)
    runner.start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    runner.stop(timeout=5000)


class Bench(Harness):
    system = "dramatiq"

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
            noop.send()
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
                raise TimeoutError(f"{merged['count']} of {n} messages done")
            await asyncio.sleep(0.1)

    async def drain(self, workers: int) -> Sample:
        self.reset()
        n = self.sizes["drain"]
        started = time.perf_counter()
        for _ in range(n):
            noop.send()
        enqueue_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="dramatiq-bench-") as record:
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
        with tempfile.TemporaryDirectory(prefix="dramatiq-bench-") as record:
            processes = self.start_workers(1, record)
            try:
                await asyncio.sleep(3.0)  # started, consuming, idle

                def many(count: int) -> None:
                    for _ in range(count):
                        noop.send(sent_at=time.time())

                sent, offered = await paced_send(
                    lambda: noop.send(sent_at=time.time()),
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
            "clock": "client time.time() at send -> worker time.time() at before_process_message",
        }

    async def run(self) -> None:
        await self.measure("enqueue_one", self.enqueue_one)
        await self.measure("drain_1", lambda: self.drain(1))
        await self.measure("drain_2", lambda: self.drain(2))
        await self.measure("pickup_idle", lambda: self.pickup(None))
        self.reset()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    parser.add_argument("--drain-jobs", type=int, default=None)
    args = parser.parse_args()
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
                "system": "dramatiq",
                "version": dramatiq.__version__,
                "redis_py": redis.__version__,
                "started": started,
                "seconds": time.time() - started,
                "sizes": bench.sizes,
                "settings": {
                    "broker": "RedisBroker (local, database 12), default middleware",
                    "processes": "1 per worker (programmatic dramatiq.Worker)",
                    "threads": THREADS,
                    "actor": "sync no-op, max_retries=0",
                },
            },
        )


if __name__ == "__main__":
    main()
