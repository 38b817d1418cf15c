"""What the claim and the completion cost the database, per job: the backends' own CPU time.

Wall-clock figures on a 2-core machine shared by PostgreSQL, the worker and anything else running move by a
factor of two from one run to the next; the CPU time a backend spent (utime + stime from /proc) does not
depend on who else wanted the cores. Hence this measurement, used to choose the claim connection's settings
(jobkeeper/worker/connection.py) and the shape of `claim_jobs`.

A claim connection (the worker's session settings, or `--options` instead) claims batches of `--batch`,
and an outcome connection completes each batch with `record_outcomes`, until `--jobs` are done. Printed:
the CPU of each backend per job, and this process's CPU per job for each step (psycopg and row conversion).

Scenarios (`--scenario`), each on a freshly vacuumed table, every job with its idempotency key:

- history: 20,000 finished jobs, then 12,000 pending, statistics taken after both;
- stale: the same, statistics taken before the pending jobs were written;
- tenants: 20 tenants, each with 1,000 finished and 600 pending jobs;
- empty: 12,000 pending jobs written into a table whose statistics say it is empty (the drain benchmark's
  state: every job deleted, then a backlog enqueued).

Run it on the local PostgreSQL, with the server to itself, when its figures matter (it deletes every job in
the database it is given; use a benchmark database):

    .venv/bin/python bench/claim_cpu.py --url postgresql://postgres@127.0.0.1:5432/jk_bench --scenario history
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from jobkeeper import Settings
from jobkeeper.store import migrate, outcomes, workers
from jobkeeper.store.run import run as run_steps
from jobkeeper.worker.connection import connection_kwargs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from jk import INSERT_ROWS  # noqa: E402
from jk_tasks import QUEUES, TYPES  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DEFAULT_TENANT = "00000000-0000-0000-0000-000000000001"


def backend_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a local backend has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def insert(conn: psycopg.Connection[Any], tenant: str, n: int, status: str, prefix: str, age: float) -> None:
    conn.execute(
        INSERT_ROWS,
        {
            "n": n,
            "prefix": prefix,
            "tenant": tenant,
            "queue": QUEUES["durable"],
            "type": TYPES["durable"],
            "status": status,
            "tier": "durable",
            "age": age,
        },
    )


def prepare(url: str, scenario: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM jobkeeper.jobs")
        conn.execute("DELETE FROM jobkeeper.idempotency_keys")
        conn.execute("VACUUM jobkeeper.jobs_logged, jobkeeper.idempotency_keys")
        if scenario == "empty":
            conn.execute("ANALYZE jobkeeper.jobs_logged, jobkeeper.idempotency_keys")
            insert(conn, DEFAULT_TENANT, 12_000, "pending", "p-", 10.0)
            return
        if scenario == "tenants":
            for i in range(20):
                tenant = str(uuid.uuid5(uuid.NAMESPACE_URL, f"jobkeeper-bench-tenant-{i}"))
                conn.execute(
                    "INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (tenant, f"bench tenant {i}", f"bench-tenant-{i}"),
                )
                insert(conn, tenant, 1000, "completed", f"c{i}-", 100.0)
                insert(conn, tenant, 600, "pending", f"p{i}-", 10.0)
        else:
            insert(conn, DEFAULT_TENANT, 20_000, "completed", "c-", 100.0)
            if scenario == "stale":
                conn.execute("VACUUM ANALYZE jobkeeper.jobs_logged, jobkeeper.idempotency_keys")
            insert(conn, DEFAULT_TENANT, 12_000, "pending", "p-", 10.0)
        if scenario != "stale":
            conn.execute("VACUUM ANALYZE jobkeeper.jobs_logged, jobkeeper.idempotency_keys")


async def measure(url: str, jobs: int, batch: int, options: str | None) -> dict[str, float]:
    settings = Settings.from_env({})
    claim_kwargs = connection_kwargs(settings, "claim")
    if options is not None:
        claim_kwargs["options"] = options
    claim_conn = await psycopg.AsyncConnection.connect(url, **claim_kwargs)
    outcome_conn = await psycopg.AsyncConnection.connect(url, **connection_kwargs(settings, "outcomes"))
    worker_id = uuid.uuid4()
    await run_steps(
        outcome_conn, workers.register(worker_id=worker_id, queues=[], job_types=[], concurrency=batch)
    )
    claim_pid, outcome_pid = claim_conn.info.backend_pid, outcome_conn.info.backend_pid
    claim_start, outcome_start = backend_cpu(claim_pid), backend_cpu(outcome_pid)
    done, py_claim, py_outcome = 0, 0.0, 0.0
    while done < jobs:
        t0 = time.process_time()
        claimed = await run_steps(
            claim_conn,
            outcomes.claim(worker_id=worker_id, types=[TYPES["durable"]], limit=min(batch, jobs - done)),
        )
        t1 = time.process_time()
        if not claimed:
            break
        claimed.sort(key=lambda c: c.job.id)
        await run_steps(
            outcome_conn,
            outcomes.record(
                worker_id=worker_id,
                ids=[c.job.id for c in claimed],
                tiers=[c.job.tier.value for c in claimed],
                attempts=[c.job.attempts for c in claimed],
                kinds=["complete"] * len(claimed),
                results=[None] * len(claimed),
                errors=[None] * len(claimed),
                delays=[0.0] * len(claimed),
            ),
        )
        py_claim += t1 - t0
        py_outcome += time.process_time() - t1
        done += len(claimed)
    claim_cpu = backend_cpu(claim_pid) - claim_start
    outcome_cpu = backend_cpu(outcome_pid) - outcome_start
    await claim_conn.close()
    await outcome_conn.close()
    per_job = 1e6 / max(done, 1)
    return {
        "jobs": done,
        "claim_backend_us": claim_cpu * per_job,
        "outcome_backend_us": outcome_cpu * per_job,
        "claim_python_us": py_claim * per_job,
        "outcome_python_us": py_outcome * per_job,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", choices=("history", "stale", "tenants", "empty"), default="history")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--options", help="the claim connection's options instead of the worker's")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    migrate.upgrade(args.url)
    for run in range(args.runs):
        prepare(args.url, args.scenario)
        r = asyncio.run(measure(args.url, args.jobs, args.batch, args.options))
        print(
            f"{args.scenario} run {run + 1}: {r['jobs']:.0f} jobs, backend CPU per job: claim "
            f"{r['claim_backend_us']:.0f} us, completion {r['outcome_backend_us']:.0f} us; this process: "
            f"claim {r['claim_python_us']:.0f} us, completion {r['outcome_python_us']:.0f} us",
            flush=True,
        )


if __name__ == "__main__":
    main()
