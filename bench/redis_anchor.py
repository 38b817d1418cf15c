"""The measurements of the Redis-backed anchors (Celery, Dramatiq): the same enqueue, drain and pickup
loops for both; each anchor's script says how it sends a job and runs its worker."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

import redis
from common import Harness, ProcessWatch, Sample, paced_send, percentile, read_recorders, sizes


class RedisBench(Harness):
    """A Redis-backed anchor's measurements; a subclass names its system, its worker script and how it sends
    one no-op job (`send`)."""

    system: str
    script: str
    warm_up_seconds = 4.0

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        super().__init__(args.runs, args.only)
        self.url = url
        self.sizes = sizes(args.quick)
        if args.drain_jobs:
            self.sizes["drain"] = args.drain_jobs
        self.redis = redis.Redis.from_url(url)

    def send(self, sent_at: float | None) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self.redis.flushdb()

    def start_workers(self, count: int, record: str) -> list[Any]:
        env = dict(os.environ, BENCH_RECORD_DIR=record, BENCH_REDIS=self.url)
        return self.start_script_workers(self.script, count, ["--redis", self.url], env=env)

    async def enqueue_one(self) -> Sample:
        self.reset()
        n = self.sizes["enqueue_one"]
        started = time.perf_counter()
        for _ in range(n):
            self.send(None)
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
                raise TimeoutError(f"{merged['count']} of {n} jobs done")
            await asyncio.sleep(0.1)

    async def drain(self, workers: int) -> Sample:
        self.reset()
        n = self.sizes["drain"]
        started = time.perf_counter()
        for _ in range(n):
            self.send(None)
        enqueue_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix=f"{self.system}-bench-") as record:
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
        with tempfile.TemporaryDirectory(prefix=f"{self.system}-bench-") as record:
            processes = self.start_workers(1, record)
            try:
                await asyncio.sleep(self.warm_up_seconds)  # started, connected, idle

                def many(count: int) -> None:
                    for _ in range(count):
                        self.send(time.time())

                sent, offered = await paced_send(
                    lambda: self.send(time.time()),
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
