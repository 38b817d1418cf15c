"""What the database spends per job: EXPLAIN ANALYZE of jobkeeper's hot statements, no Python in the timing.

On a table holding 20,000 pending durable jobs (each with its idempotency key), with the worker's session
settings (JIT off), five times each, medians of the server-side figures:

- `claim_jobs` claiming a batch of 50 (the worker's default batch);
- `record_outcomes` completing those 50;
- `insert_jobs` enqueueing 5,000 jobs with keys (the client's chunk), and 1 job with a key.

Each statement runs in a transaction that is rolled back, so every repetition sees the same table.

    .venv/bin/python bench/explain.py --url postgresql://postgres@127.0.0.1:5432/jk_explain
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from jobkeeper import Settings
from jobkeeper.catalog import load_catalog
from jobkeeper.enqueue import prepare
from jobkeeper.store import jobs, migrate
from jobkeeper.store.queries import query
from jobkeeper.store.run import Statement

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Results, emit, log  # noqa: E402
from jk import INSERT_ROWS  # noqa: E402
from jk_tasks import QUEUES, TYPES  # noqa: E402

NODE = re.compile(
    r"->\s+(?P<node>(Insert|Update) on \w+).*actual time=[\d.]+\.\.(?P<ms>[\d.]+) rows=(?P<rows>\d+)"
)
TRIGGER = re.compile(r"Trigger (?P<name>.+?): time=(?P<ms>[\d.]+) calls=(?P<calls>\d+)")
EXECUTION = re.compile(r"Execution Time: (?P<ms>[\d.]+) ms")
PLANNING = re.compile(r"Planning Time: (?P<ms>[\d.]+) ms")


def parse(plan: list[str]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for line in plan:
        if match := NODE.search(line):
            name = match.group("node")
            figures[name] = figures.get(name, 0.0) + float(match.group("ms"))
        elif match := TRIGGER.match(line.strip()):
            figures["trigger " + match.group("name")] = float(match.group("ms"))
        elif match := EXECUTION.search(line):
            figures["execution"] = float(match.group("ms"))
        elif match := PLANNING.search(line):
            figures["planning"] = float(match.group("ms"))
    return figures


def explain(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> dict[str, float]:
    with conn.transaction(force_rollback=True):
        cur = conn.execute("EXPLAIN (ANALYZE, TIMING) " + sql, params)  # type: ignore[operator]
        return parse([row[0] for row in cur.fetchall()])


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for s in samples for k in s}
    return {k: statistics.median(s.get(k, 0.0) for s in samples) for k in sorted(keys)}


async def _catalog(url: str) -> Any:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await load_catalog(conn)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = max(args.runs, 3)
    settings = Settings.from_env({})
    tenant = settings.default_tenant
    migrate.upgrade(args.url)
    results: Results = {}
    started = time.time()
    try:
        with psycopg.connect(args.url, autocommit=True, options="-c jit=off") as conn:
            conn.execute("TRUNCATE jobkeeper.jobs, jobkeeper.idempotency_keys, jobkeeper.dead_letter_jobs")
            params = {
                "n": 20_000,
                "prefix": "explain-",
                "tenant": tenant,
                "queue": QUEUES["durable"],
                "type": TYPES["durable"],
                "status": "pending",
                "tier": "durable",
                "age": 0.0,
            }
            conn.execute(INSERT_ROWS, params)  # type: ignore[arg-type]
            worker = uuid.uuid4()
            claim = {
                "worker_id": worker,
                "types": [TYPES["durable"]],
                "limit": 50,
                "queues": None,
                "now": None,
            }
            log(f"explain: claim_jobs x{repeat}")
            results["claim_50"] = [explain(conn, query("claim_jobs"), claim) for _ in range(repeat)]
            rows = conn.execute(query("claim_jobs"), claim).fetchall()  # committed: 50 processing jobs
            ids = sorted((row[0], row[6], row[8]) for row in rows)  # id, tier, attempts
            outcome = {
                "ids": [r[0] for r in ids],
                "tiers": [r[1] for r in ids],
                "attempts": [r[2] for r in ids],
                "kinds": ["complete"] * len(ids),
                "results": [None] * len(ids),
                "errors": [None] * len(ids),
                "delays": [0.0] * len(ids),
                "worker_id": worker,
                "now": None,
            }
            log(f"explain: record_outcomes x{repeat}")
            results["complete_50"] = [explain(conn, query("record_outcomes"), outcome) for _ in range(repeat)]
            cat = asyncio.run(_catalog(args.url))
            for size, name in ((5000, "insert_5000"), (1, "insert_1")):
                samples = []
                log(f"explain: insert_jobs of {size} x{repeat}")
                for _ in range(repeat):
                    tag = uuid.uuid4().hex
                    items = [
                        {
                            "type": TYPES["durable"],
                            "queue": QUEUES["durable"],
                            "payload": {"n": i},
                            "idempotency_key": f"{tag}-{i}",
                        }
                        for i in range(size)
                    ]
                    # The insert statement exactly as `jobs.insert_many` sends it (its first step).
                    step = next(jobs.insert_many(prepare(items, cat, settings), own_transaction=True))
                    assert isinstance(step, Statement)
                    samples.append(explain(conn, step.sql, dict(step.params or {})))
                results[name] = samples
            conn.execute("TRUNCATE jobkeeper.jobs, jobkeeper.idempotency_keys, jobkeeper.dead_letter_jobs")
    finally:
        summary = {name: medians(samples) for name, samples in results.items()}
        emit(
            {name: [figures] for name, figures in summary.items()},
            {"system": "explain", "started": started, "seconds": time.time() - started, "repeat": repeat},
        )


if __name__ == "__main__":
    main()
