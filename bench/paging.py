"""Job-list paging and the dashboard's counts at a million jobs: EXPLAIN (ANALYZE, BUFFERS) and wall time.

    .venv/bin/python bench/paging.py [--url postgresql://postgres@127.0.0.1:5432/postgres] [--rows 1000000]
                                     [--database jk_paging] [--reload] [--runs 7] [--only PREFIX]

Creates (once) a database of its own on the server of `--url`, migrates it to head and loads `--rows` jobs
with `generate_series`: five tenants (55 %, 30 %, 10 %, 4.9 %, 0.1 % of the jobs), the nine built-in job
types in their three queues (each in its tier's partition), 30 days of history (newest 3 % pending, 0.5 %
processing; older ones 92 % completed, 5 % failed with a dead letter, 3 % cancelled) and payloads with a
few fields (`orderId` unique, `venueId` one of 200, `userId`, `amount`, nested `customer.id`). A later run
reuses the rows (`--reload` loads them again).

Every scenario runs one of the service's own named queries (`api_list_jobs`, `dashboard_list_jobs`, the
count queries) exactly as a request does: in a transaction opened with `api_enter`, as a platform admin
(role `jobkeeper_worker`, every tenant) or as a venue admin (role `jobkeeper_api` with its tenant, so
row-level security applies). For each: the plan's execution time, shared buffers (hit + read) and the
index or scan it starts from, then the median wall time of `--runs` executions on one connection
(psycopg prepares a statement on its 5th execution, as the API's pooled connections do, so the later runs
also show a generic plan if the server switches to one). JIT off, as the service runs. The machine's load
average is printed: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from jobkeeper.store import migrate
from jobkeeper.store.queries import query

PAGE = 50
COUNT_CAP = 10_000  # the dashboard's: jobkeeper.dashboard.pages_overview.COUNT_CAP, pages_jobs.MAX_BULK
FINISHED_CAP = 1_000  # pages_overview.FINISHED_CAP
PAYLOAD_SCAN = 20_000  # pages_jobs.PAYLOAD_SCAN
TENANTS = [("paging-big", 0.55), ("paging-mid", 0.30), ("paging-small", 0.10), ("paging-rest", 0.049)]
TINY = "paging-tiny"  # the remaining 0.1 %
# (queue, tier, type, share of the jobs)
TYPES = [
    ("money", "durable", "payment-process", 0.20),
    ("money", "durable", "refund-process", 0.03),
    ("money", "durable", "nft-mint", 0.05),
    ("money", "durable", "payout-process", 0.01),
    ("communication", "fast", "send-email", 0.25),
    ("communication", "fast", "send-sms", 0.10),
    ("communication", "fast", "send-push", 0.10),
    ("background", "ephemeral", "analytics-track", 0.25),
    ("background", "ephemeral", "generate-report", 0.01),
]
HISTORY = timedelta(days=30)

LOAD = """
WITH kinds AS (
    SELECT * FROM unnest(%(queues)s::text[], %(tiers)s::text[], %(types)s::text[], %(type_ends)s::float8[])
        WITH ORDINALITY AS k(queue, tier, type, upto, ord)
), owners AS (
    SELECT * FROM unnest(%(tenants)s::uuid[], %(tenant_ends)s::float8[]) WITH ORDINALITY AS o(id, upto, ord)
), rows AS (
    SELECT g.n,
           -- three independent uniform draws in [0, 1) from n
           ((hashint8(g.n) & 2147483647)::float8 / 2147483648) AS r_tenant,
           ((hashint8(g.n + 7919) & 2147483647)::float8 / 2147483648) AS r_type,
           ((hashint8(g.n + 104729) & 2147483647)::float8 / 2147483648) AS r_status,
           %(total)s::bigint - g.n AS age_rank,
           %(now)s::timestamptz - (%(total)s::bigint - g.n) * %(step)s::interval AS created
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g(n)
), picked AS (
    SELECT r.*,
           (SELECT o.id FROM owners o WHERE r.r_tenant < o.upto ORDER BY o.ord LIMIT 1) AS tenant_id,
           (SELECT k.ord FROM kinds k WHERE r.r_type < k.upto ORDER BY k.ord LIMIT 1) AS kind_ord,
           CASE WHEN r.age_rank < %(total)s * 0.03 THEN 'pending'
                WHEN r.age_rank < %(total)s * 0.035 THEN 'processing'
                WHEN r.r_status < 0.92 THEN 'completed'
                WHEN r.r_status < 0.97 THEN 'failed'
                ELSE 'cancelled' END AS status
    FROM rows r
)
INSERT INTO jobkeeper.jobs (tenant_id, queue, type, tier, payload, status, priority, attempts, max_attempts,
                            last_error, scheduled_at, started_at, completed_at, heartbeat_at, worker_id,
                            created_at, updated_at)
SELECT p.tenant_id, k.queue, k.type, k.tier,
       jsonb_build_object('orderId', 'o-' || p.n, 'venueId', 'v-' || (p.n %% 200), 'userId',
                          'u-' || (hashint8(p.n) & 65535), 'amount', (p.n %% 100000) + 1,
                          'customer', jsonb_build_object('id', ((p.n * 31) %% 10000)::text)),
       p.status, 5, CASE WHEN p.status IN ('failed') THEN 3 WHEN p.status = 'pending' THEN 0 ELSE 1 END, 3,
       CASE WHEN p.status = 'failed' THEN 'ProviderError: declined' END,
       p.created, CASE WHEN p.status <> 'pending' THEN p.created + interval '1 second' END,
       CASE WHEN p.status IN ('completed', 'failed', 'cancelled') THEN p.created + interval '2 seconds' END,
       CASE WHEN p.status = 'processing' THEN %(now)s::timestamptz END,
       CASE WHEN p.status = 'processing' THEN %(worker)s::uuid END,
       p.created, p.created
FROM picked p
JOIN kinds k ON k.ord = p.kind_ord
"""

DEAD_LETTERS = """
INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,
                                        max_attempts, last_error, failed_at, created_at)
SELECT tenant_id, id, queue, type, payload, priority, attempts, max_attempts, last_error, completed_at,
       completed_at
FROM jobkeeper.jobs
WHERE status = 'failed'
ON CONFLICT DO NOTHING
"""

EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
BUFFERS = re.compile(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?")
SCAN = re.compile(
    r"((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)(?: Backward)?"
    r"(?: using (\w+))?(?: on \w+)?)"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class World:
    url: str
    tenants: dict[str, uuid.UUID]
    now: datetime
    deep_cursor: tuple[datetime, uuid.UUID]
    deep_cursor_tenant: tuple[datetime, uuid.UUID]


@dataclass
class Scenario:
    name: str
    query: str
    params: dict[str, Any]
    tenant: uuid.UUID | None
    """None: a platform admin; else a venue admin of that tenant (row-level security)."""


@dataclass
class Measured:
    scenario: Scenario
    execution_ms: float
    buffers: int
    scans: list[str]
    rows: int
    wall_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.wall_ms)

    @property
    def prepared_ms(self) -> float:
        """Median of the executions after psycopg prepared the statement (the 6th on)."""
        later = self.wall_ms[5:] or self.wall_ms
        return statistics.median(later)


def ensure_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def load(url: str, rows: int, reload: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM jobkeeper.jobs").fetchone()
        have = int(row[0]) if row else 0
        if have == rows and not reload:
            log(f"{have:,} jobs already loaded")
            return
        log(f"loading {rows:,} jobs (found {have:,})")
        conn.execute("TRUNCATE jobkeeper.jobs, jobkeeper.dead_letter_jobs, jobkeeper.idempotency_keys")
        conn.execute("DELETE FROM jobkeeper.tenants WHERE slug LIKE 'paging-%%'")
        tenant_ids: list[uuid.UUID] = []
        ends: list[float] = []
        upto = 0.0
        for slug, share in [*TENANTS, (TINY, 1.0)]:
            ident = conn.execute(
                "INSERT INTO jobkeeper.tenants (name, slug) VALUES (%s, %s) RETURNING id", (slug, slug)
            ).fetchone()
            assert ident is not None
            tenant_ids.append(ident[0])
            upto = min(1.0, upto + share) if slug != TINY else 1.0001
            ends.append(upto)
        type_ends: list[float] = []
        upto = 0.0
        for *_, share in TYPES:
            upto += share
            type_ends.append(upto)
        type_ends[-1] = 1.0001
        now = conn.execute("SELECT date_trunc('second', now())").fetchone()
        assert now is not None
        params: dict[str, Any] = {
            "queues": [t[0] for t in TYPES],
            "tiers": [t[1] for t in TYPES],
            "types": [t[2] for t in TYPES],
            "type_ends": type_ends,
            "tenants": tenant_ids,
            "tenant_ends": ends,
            "total": rows,
            "now": now[0],
            "step": HISTORY / rows,
            "worker": uuid.uuid4(),
        }
        chunk = 100_000
        started = time.monotonic()
        for start in range(1, rows + 1, chunk):
            stop = min(rows, start + chunk - 1)
            conn.execute(LOAD, params | {"start": start, "stop": stop})
            log(f"  {stop:,} jobs ({time.monotonic() - started:.0f} s)")
        conn.execute(DEAD_LETTERS)
        log("vacuum analyze")
        conn.execute("VACUUM (ANALYZE) jobkeeper.jobs")
        conn.execute("VACUUM (ANALYZE) jobkeeper.dead_letter_jobs")
        log(f"loaded in {time.monotonic() - started:.0f} s")


def world(url: str) -> World:
    with psycopg.connect(url, autocommit=True) as conn:
        tenants = {
            slug: ident
            for ident, slug in conn.execute(
                "SELECT id, slug FROM jobkeeper.tenants WHERE slug LIKE 'paging-%%'"
            ).fetchall()
        }
        now = conn.execute("SELECT max(created_at) FROM jobkeeper.jobs").fetchone()
        assert now is not None
        assert now[0] is not None
        # Half-way down the history: page 10,000 of the platform's list, page 5,000 of the big tenant's.
        deep = conn.execute(
            "SELECT created_at, id FROM jobkeeper.jobs ORDER BY created_at DESC, id DESC"
            " OFFSET (SELECT count(*) / 2 FROM jobkeeper.jobs) LIMIT 1"
        ).fetchone()
        deep_tenant = conn.execute(
            "SELECT created_at, id FROM jobkeeper.jobs WHERE tenant_id = %(t)s"
            " ORDER BY created_at DESC, id DESC"
            " OFFSET (SELECT count(*) / 2 FROM jobkeeper.jobs WHERE tenant_id = %(t)s) LIMIT 1",
            {"t": tenants["paging-big"]},
        ).fetchone()
    assert deep is not None
    assert deep_tenant is not None
    return World(url, tenants, now[0], (deep[0], deep[1]), (deep_tenant[0], deep_tenant[1]))


def list_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "tenant_id": None,
        "statuses": None,
        "type": None,
        "queue": None,
        "created_after": None,
        "created_before": None,
        "payload": None,
        "before_created_at": None,
        "before_id": None,
        "limit": PAGE,
        "scan_limit": PAYLOAD_SCAN,
    }
    params.update(overrides)
    return params


def scenarios(w: World) -> list[Scenario]:
    big, tiny = w.tenants["paging-big"], w.tenants[TINY]
    day_ago, two_days = w.now - timedelta(days=1), w.now - timedelta(days=2)
    hour_ago = w.now - timedelta(hours=1)
    filters: list[tuple[str, dict[str, Any]]] = [
        ("first page", {}),
        ("status failed", {"statuses": ["failed"]}),
        ("status pending+processing", {"statuses": ["pending", "processing"]}),
        ("queue communication", {"queue": "communication"}),
        ("type refund-process (3 %)", {"type": "refund-process"}),
        ("type generate-report (1 %)", {"type": "generate-report"}),
        ("time range: a day, a day ago", {"created_after": two_days, "created_before": day_ago}),
        ("payload venueId (0.5 %)", {"payload": json.dumps({"venueId": "v-7"})}),
        ("payload customer.id (0.01 %)", {"payload": json.dumps({"customer": {"id": "77"}})}),
        ("payload orderId (1 row)", {"payload": json.dumps({"orderId": "o-123457"})}),
        (
            "failed payment-process, last hour",
            {"statuses": ["failed"], "type": "payment-process", "created_after": hour_ago},
        ),
    ]
    found: list[Scenario] = []
    for who, tenant, deep in (
        ("admin", None, w.deep_cursor),
        ("venue big", big, w.deep_cursor_tenant),
        ("venue tiny", tiny, None),
    ):
        scope = {"tenant_id": tenant}
        for label, extra in filters:
            found.append(Scenario(f"{who}: {label}", "api_list_jobs", list_params(**scope, **extra), tenant))
        rare = list_params(**scope, payload=json.dumps({"orderId": "o-123457"}))
        found.append(Scenario(f"{who}: payload window edge", "api_list_jobs_edge", rare, tenant))
        if deep is not None:
            cursor = {"before_created_at": deep[0], "before_id": deep[1]}
            found.append(
                Scenario(f"{who}: deep page", "api_list_jobs", list_params(**scope, **cursor), tenant)
            )
            found.append(
                Scenario(
                    f"{who}: deep page, status failed",
                    "api_list_jobs",
                    list_params(**scope, **cursor, statuses=["failed"]),
                    tenant,
                )
            )
        if tenant is None:
            found.append(Scenario("admin: tenant tiny", "api_list_jobs", list_params(tenant_id=tiny), None))
        dashboard = list_params(**scope)
        dashboard["filter"] = dashboard.pop("payload")
        dashboard["scan_limit"] = PAYLOAD_SCAN
        found.append(Scenario(f"{who}: dashboard first page", "dashboard_list_jobs", dashboard, tenant))
        for label, extra in (
            ("queue communication", {"queue": "communication"}),
            ("payload venueId (0.5 %)", {"filter": json.dumps({"venueId": "v-7"})}),
            ("payload orderId (1 row), one window", {"filter": json.dumps({"orderId": "o-123457"})}),
        ):
            found.append(
                Scenario(f"{who}: dashboard {label}", "dashboard_list_jobs", dashboard | extra, tenant)
            )
        counts = {"tenant_id": tenant}
        found.append(
            Scenario(f"{who}: overview counts, exact (all queues)", "dashboard_queues", counts, tenant)
        )
        found.append(
            Scenario(
                f"{who}: overview counts, capped (all queues)",
                "dashboard_queue_counts",
                counts | {"cap": COUNT_CAP, "finished_cap": FINISHED_CAP},
                tenant,
            )
        )
        found.append(
            Scenario(f"{who}: queue stats money", "api_queue_stats", counts | {"queue": "money"}, tenant)
        )
        bulk = dashboard | {"limit": None}
        del bulk["before_created_at"], bulk["before_id"], bulk["limit"]
        bulk["payload"] = bulk.pop("filter")  # count_jobs_for_action names it `payload`
        for label, extra, actionable in (
            (
                "retry failed payment-process, last hour",
                {"statuses": ["failed"], "type": "payment-process", "created_after": hour_ago},
                ["failed", "cancelled"],
            ),
            ("retry all failed", {"statuses": ["failed"]}, ["failed", "cancelled"]),
            ("cancel all pending", {"statuses": ["pending"]}, ["pending", "processing"]),
            ("retry all (no filter)", {}, ["failed", "cancelled"]),
            (
                "retry failed, payload venueId",
                {"payload": json.dumps({"venueId": "v-7"})},
                ["failed", "cancelled"],
            ),
        ):
            found.append(
                Scenario(
                    f"{who}: bulk count, {label}",
                    "dashboard_count_jobs",
                    bulk | extra | {"actionable": actionable, "cap": COUNT_CAP},
                    tenant,
                )
            )
    return found


def enter(conn: psycopg.Connection[Any], tenant: uuid.UUID | None) -> None:
    """What the API's `api_enter` does at the start of a request's transaction: its role and tenant."""
    conn.execute(
        "SELECT set_config('role', %s, true), set_config('jobkeeper.tenant_id', %s, true)",
        ("jobkeeper_worker" if tenant is None else "jobkeeper_api", "" if tenant is None else str(tenant)),
    )


def measure(url: str, scenario: Scenario, runs: int) -> Measured:
    statement = query(scenario.query)
    with psycopg.connect(url, options="-c jit=off") as conn:
        with conn.transaction(force_rollback=True):
            enter(conn, scenario.tenant)
            plan = [
                row[0]
                for row in conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement,
                    scenario.params,
                ).fetchall()
            ]
        execution = next((float(m.group(1)) for line in plan if (m := EXECUTION.search(line))), 0.0)
        buffers = 0
        for line in plan:
            if match := BUFFERS.search(line):  # the first Buffers line is the top node's: the whole query
                buffers = sum(int(g) for g in match.groups() if g)
                break
        scans = list(dict.fromkeys(m.group(1) for line in plan if (m := SCAN.search(line))))
        measured = Measured(scenario, execution, buffers, scans, 0)
        for _ in range(runs):
            with conn.transaction(force_rollback=True):
                enter(conn, scenario.tenant)
                started = time.perf_counter()
                rows = conn.execute(statement, scenario.params).fetchall()
                measured.wall_ms.append((time.perf_counter() - started) * 1000)
                measured.rows = len(rows)
    return measured


def report(results: list[Measured]) -> None:
    print(
        "\n| scenario | rows | plan: execution ms | buffers | wall ms (median) | prepared ms | starts from |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for m in results:
        scans = "; ".join(m.scans[:3]) or "-"
        print(
            f"| {m.scenario.name} | {m.rows} | {m.execution_ms:.1f} | {m.buffers:,} | {m.median_ms:.1f} | "
            f"{m.prepared_ms:.1f} | {scans} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "JOBKEEPER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server whose user creates databases (the bench database is made on it)",
    )
    parser.add_argument("--database", default="jk_paging")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="", help="run only scenarios whose name starts with this")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    url = ensure_database(args.url, args.database)
    migrate.upgrade(url)
    load(url, args.rows, args.reload)
    w = world(url)
    log(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
        f"on {os.cpu_count()} cores"
    )
    results = []
    for scenario in scenarios(w):
        if not scenario.name.startswith(args.only):
            continue
        measured = measure(url, scenario, args.runs)
        log(f"{scenario.name}: {measured.execution_ms:.1f} ms, median {measured.median_ms:.1f} ms")
        results.append(measured)
    log(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    report(results)
    if args.json:
        document = [
            {
                "scenario": m.scenario.name,
                "rows": m.rows,
                "execution_ms": m.execution_ms,
                "buffers": m.buffers,
                "wall_ms": m.wall_ms,
                "scans": m.scans,
            }
            for m in results
        ]
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)


if __name__ == "__main__":
    main()
