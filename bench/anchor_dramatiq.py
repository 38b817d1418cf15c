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
    emit,
)
from redis_anchor import RedisBench  # noqa: E402

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


class Bench(RedisBench):
    system = "dramatiq"
    script = __file__
    warm_up_seconds = 3.0

    def send(self, sent_at: float | None) -> None:
        noop.send() if sent_at is None else noop.send(sent_at=sent_at)


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
