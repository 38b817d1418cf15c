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
    emit,
)
from redis_anchor import RedisBench  # noqa: E402

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


class Bench(RedisBench):
    system = "celery"
    script = __file__

    def send(self, sent_at: float | None) -> None:
        noop.delay() if sent_at is None else noop.delay(sent_at=sent_at)


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
