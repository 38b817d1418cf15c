"""jobkeeper's measurements, run with the project's virtual environment (`.venv/bin/python bench/jk.py`).

Every worker is a real `jobkeeper worker --import jk_tasks` process: built-in processors registered,
heartbeats, the maintenance leader (rescuer, scheduler, snapshots, alerts, pruning) competing for its lease,
fair claims between tenants, batched outcomes with attempt history. Every job carries an idempotency key
(checked at enqueue against the unique index, and given the job's result at completion) unless a
measurement's name ends in `_nokey`. Times come from the database clock where the database has them
(started_at, completed_at, created_at); enqueue rates are client wall-clock.

Usage (bench/run.py calls it; standalone for one measurement):
    .venv/bin/python bench/jk.py --url postgresql://postgres@127.0.0.1:5432/jk_bench --runs 3 \
        [--quick] [--only drain_1,pickup_idle] [--py-spy bench/.anchors-venv/bin/py-spy]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from jobkeeper import Client, Settings
from jobkeeper.store import migrate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_queries import bench_query  # noqa: E402
from common import (  # noqa: E402
    Harness,
    ProcessWatch,
    Sample,
    brief,
    cpu_seconds,
    emit,
    log,
    paced_send,
    rss_bytes,
    sizes,
)
from jk_tasks import QUEUES, TYPES  # noqa: E402

ROOT = HERE.parent
JOBKEEPER = Path(sys.executable).parent / "jobkeeper"
PROFILES = ROOT / "docs" / "profiles"

# Rows written straight in SQL: finished history (the 1M-row test) and big pending backlogs (memory test).
# Each job has its idempotency key row, as every job enqueued by these benchmarks does.
INSERT_ROWS = """
WITH src AS MATERIALIZED (
    SELECT gen_random_uuid() AS id, g, %(prefix)s || g AS key
    FROM generate_series(1, %(n)s::integer) AS g
),
keys AS (
    INSERT INTO jobkeeper.idempotency_keys (tenant_id, key, job_id, queue, job_type, processed_at, expires_at)
    SELECT %(tenant)s, key, id, %(queue)s, %(type)s,
           CASE WHEN %(status)s = 'completed' THEN now() END, now() + interval '1 day'
    FROM src
)
INSERT INTO jobkeeper.jobs (id, tenant_id, queue, type, payload, status, tier, priority, attempts,
                            max_attempts, idempotency_key, scheduled_at, started_at, completed_at,
                            created_at, result)
SELECT id, %(tenant)s, %(queue)s, %(type)s, jsonb_build_object('n', g), %(status)s, %(tier)s, 7,
       CASE WHEN %(status)s = 'completed' THEN 1 ELSE 0 END, 10, key,
       now() - make_interval(secs => %(age)s * g / %(n)s::float8),
       CASE WHEN %(status)s = 'completed' THEN now() - make_interval(secs => %(age)s * g / %(n)s::float8) END,
       CASE WHEN %(status)s = 'completed' THEN now() - make_interval(secs => %(age)s * g / %(n)s::float8) END,
       now() - make_interval(secs => %(age)s * g / %(n)s::float8),
       CASE WHEN %(status)s = 'completed' THEN 'null'::jsonb END
FROM src
"""

COUNT_LIVE = """
SELECT count(*) FILTER (WHERE status = 'completed'),
       count(*) FILTER (WHERE status IN ('pending', 'processing'))
FROM jobkeeper.jobs WHERE type = %(type)s AND created_at >= %(since)s
"""

# Live (pending or processing) jobs of a queue: served by an index that holds only such rows' states.
LIVE_IN_QUEUE = """
SELECT count(*) FROM jobkeeper.jobs WHERE queue = %(queue)s AND status IN ('pending', 'processing')
"""


class Bench(Harness):
    system = "jobkeeper"

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        super().__init__(args.runs, args.only)
        self.url = url
        self.args = args
        self.settings = Settings.from_env({})
        self.tenant = self.settings.default_tenant
        self.logs = Path(tempfile.mkdtemp(prefix="jk-bench-"))
        self.client = Client(url, settings=self.settings)

    # -- database helpers -------------------------------------------------------------------------------

    async def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cur = await conn.execute(statement, params)  # type: ignore[arg-type]
            return await cur.fetchall() if cur.description else []

    async def now(self) -> datetime:
        rows = await self.sql("SELECT now()")
        return rows[0][0]  # type: ignore[no-any-return]

    async def reset(self) -> None:
        """An empty queue: no jobs, keys, dead letters, workers or metrics (benchmark database only)."""
        for _ in range(50):  # the last run's workers have exited; their backends go within moments
            stray = await self.sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'jobkeeper-worker-%'"
            )
            if not stray:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"workers from elsewhere are connected to this database (backends {stray})")
        await self.sql(
            "TRUNCATE jobkeeper.jobs, jobkeeper.idempotency_keys, jobkeeper.dead_letter_jobs, "
            "jobkeeper.queue_metrics, jobkeeper.workers, jobkeeper.leases"
        )

    async def db_counters(self) -> tuple[int, int]:
        """(transactions committed in this database, WAL position in bytes: cluster-wide)."""
        rows = await self.sql(
            "SELECT xact_commit, pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        return int(rows[0][0]), int(rows[0][1])

    async def insert_rows(self, tier: str, n: int, status: str, prefix: str, age_seconds: float) -> float:
        started = time.perf_counter()
        chunk = 250_000
        for offset in range(0, n, chunk):
            size = min(chunk, n - offset)
            await self.sql(
                INSERT_ROWS,
                {
                    "n": size,
                    "prefix": f"{prefix}-{offset}-",
                    "tenant": self.tenant,
                    "queue": QUEUES[tier],
                    "type": TYPES[tier],
                    "status": status,
                    "tier": tier,
                    "age": age_seconds,
                },
            )
        return time.perf_counter() - started

    async def stats(self, tier: str, since: datetime) -> dict[str, Any]:
        async with self.client.pool.connection() as conn:
            cur = await conn.execute(bench_query("start_latency"), {"type": TYPES[tier], "since": since})
            row = await cur.fetchone()
        assert row is not None
        names = ("jobs", "completed", "first_started", "last_completed", "p50", "p99")
        return dict(zip(names, row, strict=True))

    async def wait_drained(
        self,
        tier: str,
        since: datetime,
        expected: int,
        timeout: float,
        on_progress: Callable[[int], None],
        processes: list[subprocess.Popen[bytes]],
    ) -> None:
        deadline = time.monotonic() + timeout
        # Polling costs the database a count over the drained rows: four times a second is enough (the
        # figures come from the rows' own timestamps, not from when the poll saw them).
        interval = 0.25 if expected <= 50_000 else 1.0
        while True:
            self.check_alive(processes)
            rows = await self.sql(COUNT_LIVE, {"type": TYPES[tier], "since": since})
            completed, live = rows[0]
            on_progress(completed)
            if completed >= expected and live == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out: {completed} of {expected} jobs completed")
            await asyncio.sleep(interval)

    # -- workers ----------------------------------------------------------------------------------------

    def worker_command(self) -> list[str]:
        return [str(JOBKEEPER), "worker", "--import", "jk_tasks"]

    def worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.url,
            JOBKEEPER_LOG_LEVEL="WARNING",
            PYTHONPATH=str(HERE),
        )
        return env

    def start_workers(self, count: int, prefix: list[str] | None = None) -> list[subprocess.Popen[bytes]]:
        processes = []
        for index in range(count):
            out = open(self.logs / f"worker-{time.time_ns()}-{index}.log", "wb")  # noqa: SIM115
            command = [*(prefix or []), *self.worker_command()]
            processes.append(subprocess.Popen(command, env=self.worker_env(), stdout=out, stderr=out))
        return processes

    async def wait_registered(self, pids: list[int], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.sql(
                "SELECT count(*) FROM jobkeeper.workers WHERE pid = ANY(%(pids)s) AND stopped_at IS NULL",
                {"pids": pids},
            )
            if rows[0][0] >= len(pids):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers {pids} did not register within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    @staticmethod
    def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    async def leader_held(self) -> bool:
        rows = await self.sql("SELECT count(*) FROM jobkeeper.leases WHERE expires_at > now()")
        return bool(rows[0][0])

    # -- enqueue ----------------------------------------------------------------------------------------

    @staticmethod
    def items(tier: str, n: int, tag: str, keys: bool = True) -> list[dict[str, Any]]:
        return [
            {
                "type": TYPES[tier],
                "queue": QUEUES[tier],
                "payload": {"n": i},
                "idempotency_key": f"{tag}-{i}" if keys else False,
            }
            for i in range(n)
        ]

    async def enqueue_one(self, keys: bool) -> Sample:
        await self.reset()
        n = self.args.enqueue_one_jobs
        tag = uuid.uuid4().hex
        tier = "durable"
        started = time.perf_counter()
        for i in range(n):
            await self.client.enqueue(
                TYPES[tier], {"n": i}, queue=QUEUES[tier], idempotency_key=f"{tag}-{i}" if keys else False
            )
        seconds = time.perf_counter() - started
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    async def enqueue_bulk(self, keys: bool) -> Sample:
        await self.reset()
        n = self.args.bulk_jobs
        batch = self.items("durable", n, uuid.uuid4().hex, keys)
        started = time.perf_counter()
        await self.client.enqueue_many(batch)
        seconds = time.perf_counter() - started
        return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}

    # -- drains -----------------------------------------------------------------------------------------

    async def drain(
        self,
        tier: str,
        workers: int,
        n: int,
        *,
        reset: bool = True,
        keys: bool = True,
        prefill_sql: bool = False,
        prefix: list[str] | None = None,
    ) -> Sample:
        """n jobs pre-enqueued, then `workers` processes started; jobs/s from the first start to the last
        completion (database clock)."""
        if reset:
            await self.reset()
        since = await self.now()
        enqueue_seconds = None
        if prefill_sql:
            await self.insert_rows(tier, n, "pending", uuid.uuid4().hex, 0.0)
        else:
            started = time.perf_counter()
            await self.client.enqueue_many(self.items(tier, n, uuid.uuid4().hex, keys))
            enqueue_seconds = time.perf_counter() - started
        commits0, wal0 = await self.db_counters()
        processes = self.start_workers(workers, prefix)
        pids = [p.pid for p in processes]
        watch_pids = pids if prefix is None else [await self._child_pid(pids[0])]
        watch = ProcessWatch(watch_pids, interval=0.25 if n <= 50_000 else 1.0).start()
        progress: list[tuple[float, int, float]] = []  # (monotonic, completed, worker CPU seconds)
        trace: list[tuple[int, int]] = []  # (completed, RSS bytes) for big drains
        leader = False

        def on_progress(completed: int) -> None:
            progress.append((time.monotonic(), completed, sum(cpu_seconds(pid) for pid in watch_pids)))
            if n > 50_000:
                trace.append((completed, sum(rss_bytes(pid)[0] for pid in watch_pids)))

        try:
            await self.wait_registered(watch_pids)
            task = asyncio.ensure_future(
                self.wait_drained(
                    tier, since, n, timeout=max(600.0, n / 200), on_progress=on_progress, processes=processes
                )
            )
            while not task.done():
                leader = leader or await self.leader_held()
                await asyncio.wait({task}, timeout=0.5)
            await task
            figures = watch.stop()
        finally:
            if prefix is not None:  # under py-spy: stop the worker, py-spy then writes its output and exits
                for pid in watch_pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                for process in processes:
                    process.wait(60)
            self.stop_workers(processes)
        await asyncio.sleep(0.6)  # let the statistics collector catch up
        commits1, wal1 = await self.db_counters()
        stats = await self.stats(tier, since)
        span = (stats["last_completed"] - stats["first_started"]).total_seconds()
        sample: Sample = {
            "jobs": n,
            "workers": workers,
            "seconds": span,
            "jobs_per_s": n / span,
            "enqueue_seconds": enqueue_seconds,
            "commits_per_job": (commits1 - commits0) / n,
            "wal_bytes_per_job": (wal1 - wal0) / n,
            "leader_held": leader,
            **figures,
            "worker_cpu_pct_draining": _busy_cpu(progress, n),
        }
        if trace:
            sample["rss_trace_mb"] = [
                (done, round(rss / 1e6, 1)) for done, rss in trace[:: max(1, len(trace) // 40)]
            ]
        return sample

    async def _child_pid(self, parent: int, timeout: float = 10.0) -> int:
        """The worker started under py-spy (its child)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = _children(parent)
            if children:
                return int(children[0])
            await asyncio.sleep(0.02)
        raise TimeoutError("py-spy did not start the worker")

    # -- latency ----------------------------------------------------------------------------------------

    async def pickup(self, rate: float | None) -> Sample:
        """One idle worker; jobs arrive one by one every 20 ms (rate None), or in 10 ms batches at `rate`
        jobs/s. p50/p99 of started_at - created_at (database clock)."""
        await self.reset()
        tier = "durable"
        processes = self.start_workers(1)
        try:
            await self.wait_registered([p.pid for p in processes])
            await asyncio.sleep(1.0)  # idle: its first claims found nothing
            since = await self.now()
            tag = uuid.uuid4().hex
            counter = iter(range(10**9))

            def one() -> Awaitable[Any]:
                i = next(counter)
                return self.client.enqueue(
                    TYPES[tier], {"n": i}, queue=QUEUES[tier], idempotency_key=f"{tag}-{i}"
                )

            def many(count: int) -> Awaitable[Any]:
                return self.client.enqueue_many(self.items(tier, count, f"{tag}-{next(counter)}"))

            sent, offered = await paced_send(
                one, many, jobs=self.args.pickup_jobs, rate=rate, seconds=self.args.load_seconds
            )
            await self.wait_drained(
                tier, since, sent, timeout=120, on_progress=lambda done: None, processes=processes
            )
        finally:
            self.stop_workers(processes)
        stats = await self.stats(tier, since)
        return {
            "jobs": sent,
            "offered_per_s": offered,
            "target_per_s": rate,
            "p50_ms": stats["p50"] * 1000,
            "p99_ms": stats["p99"] * 1000,
        }

    # -- the measurements -------------------------------------------------------------------------------

    async def run(self) -> None:
        a = self.args
        await self.client.open()
        await self.client.catalog(refresh=True)
        # Register the job types once (a worker does it at start), so enqueue resolves their queue.
        warm = self.start_workers(1)
        await self.wait_registered([p.pid for p in warm])
        self.stop_workers(warm)
        await self.client.catalog(refresh=True)

        await self.measure("enqueue_one", lambda: self.enqueue_one(True))
        await self.measure("enqueue_one_nokey", lambda: self.enqueue_one(False))
        await self.measure("enqueue_bulk", lambda: self.enqueue_bulk(True))
        await self.measure("enqueue_bulk_nokey", lambda: self.enqueue_bulk(False))
        drain1 = await self.measure("drain_1", lambda: self.drain("durable", 1, a.drain_jobs))
        await self.measure("drain_2", lambda: self.drain("durable", 2, a.drain_jobs))
        await self.measure("drain_1_nokey", lambda: self.drain("durable", 1, a.drain_jobs, keys=False))
        await self.measure("drain_fast_1", lambda: self.drain("fast", 1, a.drain_jobs))
        await self.measure("drain_ephemeral_1", lambda: self.drain("ephemeral", 1, a.drain_jobs))
        await self.measure("pickup_idle", lambda: self.pickup(None))
        rates = [s["jobs_per_s"] for s in drain1 if "jobs_per_s" in s]
        if not rates and (not a.only or "pickup_load" in a.only):
            log("jobkeeper: one drain_1 run to set the load of pickup_load")
            rates = [(await self._drain1())["jobs_per_s"]]
        if rates:
            half = 0.5 * statistics.median(rates)
            await self.measure("pickup_load", lambda: self.pickup(half))
        if a.py_spy and (not a.only or "profile" in a.only):
            await self.profile()
        await self.measure_finished_history()
        big = a.rss_jobs
        await self.measure("drain_rss", lambda: self.drain("durable", 1, big, prefill_sql=True), runs=1)

    async def _drain1(self) -> Sample:
        return await self.drain("durable", 1, self.args.drain_jobs)

    async def measure_finished_history(self) -> None:
        if self.args.only and "drain_1m" not in self.args.only:
            return
        n = self.args.finished_rows
        log(f"jobkeeper drain_1m: inserting {n:,} finished jobs")
        await self.reset()
        insert_seconds = await self.insert_rows("durable", n, "completed", "old", 7 * 86400.0)
        started = time.perf_counter()
        await self.sql("VACUUM ANALYZE jobkeeper.jobs")
        await self.sql("VACUUM ANALYZE jobkeeper.idempotency_keys")
        vacuum_seconds = time.perf_counter() - started
        log(f"  inserted in {insert_seconds:.1f} s, VACUUM ANALYZE {vacuum_seconds:.1f} s")
        samples = await self.measure(
            "drain_1m", lambda: self.drain("durable", 1, self.args.drain_jobs, reset=False)
        )
        for sample in samples:
            sample.update(finished_rows=n, insert_seconds=insert_seconds, vacuum_seconds=vacuum_seconds)
        await self.reset()

    async def profile(self) -> None:
        """py-spy on the worker under the 1-process drain: a flame graph (CPU samples) and the raw
        collapsed stacks including idle samples, read by bench/profile_report.py."""
        PROFILES.mkdir(parents=True, exist_ok=True)
        outputs = {
            "flamegraph": (PROFILES / "jk-worker-drain.svg", []),
            "raw": (PROFILES / "jk-worker-drain.collapsed.txt", ["--idle"]),
        }
        samples = []
        for fmt, (path, extra) in outputs.items():
            log(f"jobkeeper profile ({fmt}) -> {path.relative_to(ROOT)}")
            spy = [str(self.args.py_spy), "record", "--rate", "250", "--nonblocking", "--format", fmt]
            spy += ["-o", str(path), *extra, "--"]
            sample = await self.drain("durable", 1, self.args.drain_jobs, prefix=spy)
            sample["file"] = str(path.relative_to(ROOT))
            samples.append(sample)
            log(f"  {brief(sample)}")
        self.results["profile"] = samples


def _children(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return handle.read().split()
    except FileNotFoundError:
        return []


def _busy_cpu(progress: list[tuple[float, int, float]], n: int) -> float | None:
    """Worker CPU utilisation between the first completion seen and the last poll (the drain itself)."""
    begun = [p for p in progress if p[1] > 0]
    if len(begun) < 2:
        return None
    (t0, _, c0), (t1, _, c1) = begun[0], begun[-1]
    return 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    parser.add_argument("--py-spy", type=Path, default=None, help="py-spy binary: profile the drain")
    parser.add_argument("--rss-jobs", type=int, default=None)
    args = parser.parse_args()
    quick = args.quick
    # The N of each measurement, shared with the anchors (bench/common.py `sizes`): a rate does not depend
    # on N once past start-up, and three runs of everything must fit in 25 minutes on 2 cores.
    size = sizes(quick)
    args.enqueue_one_jobs = size["enqueue_one"]
    args.bulk_jobs = size["enqueue_bulk"]
    args.drain_jobs = size["drain"]
    args.pickup_jobs = size["pickup_idle"]
    args.load_seconds = size["pickup_load_seconds"]
    args.finished_rows = 20_000 if quick else 1_000_000
    if args.rss_jobs is None:
        # 1,000,000 would take about 20 minutes at this machine's drain rate: the largest that fits.
        args.rss_jobs = 5000 if quick else 100_000

    migrate.upgrade(args.url)
    bench = Bench(args.url, args)
    started = time.time()
    try:
        asyncio.run(bench.run())
    finally:
        meta = {
            "system": "jobkeeper",
            "started": started,
            "seconds": time.time() - started,
            "sizes": {
                "enqueue_one": args.enqueue_one_jobs,
                "enqueue_bulk": args.bulk_jobs,
                "drain": args.drain_jobs,
                "pickup_idle": args.pickup_jobs,
                "pickup_load_seconds": args.load_seconds,
                "finished_rows": args.finished_rows,
                "rss_jobs": args.rss_jobs,
            },
            "settings": {
                "worker": "jobkeeper worker --import jk_tasks (built-ins on, maintenance on)",
                "concurrency": bench.settings.worker_concurrency,
                "batch_size": bench.settings.worker_batch_size,
                "poll_interval": bench.settings.poll_interval,
            },
            "worker_logs": str(bench.logs),
        }
        emit(bench.results, meta)


if __name__ == "__main__":
    main()
