"""The schema migration 0001 builds, read back from the catalog and exercised (DESIGN §1, §2, §3, §7, §8).

Expectations come from the design (which tables hold tenant data, the tiers, the seeded queues and
limiters), never from the migration's text: each test reads what PostgreSQL actually has.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from jobkeeper.types import DEV_TENANT_ID

SCHEMA = "jobkeeper"

# DESIGN §8: every table holding tenant data, including both partitions of `jobs`.
TENANT_TABLES = (
    "jobs",
    "jobs_logged",
    "jobs_ephemeral",
    "dead_letter_jobs",
    "schedules",
    "idempotency_keys",
    "rate_limits",
    "queue_metrics",
    "alert_history",
    "queues",
    "rate_limiters",
    "job_dependencies",
)

# The per-tenant unique keys (DESIGN §6, §8): the same key may exist once for each tenant.
TENANT_UNIQUE_KEYS = {
    "schedules": ("tenant_id", "name"),
    "idempotency_keys": ("tenant_id", "key"),
    "rate_limits": ("tenant_id", "key"),
    "dead_letter_jobs": ("tenant_id", "job_id"),
}

TENANT_SETTING = re.compile(r"current_setting\('jobkeeper\.tenant_id'(::text)?, true\)")


# --- helpers ---------------------------------------------------------------------------------------------


def tables(conn: psycopg.Connection[Any], kinds: tuple[str, ...] = ("r", "p")) -> list[str]:
    """Every table of the schema (plain, partitioned and partitions), without Alembic's own."""
    rows = conn.execute(
        """
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper' AND c.relkind = ANY(%s) AND c.relname <> 'alembic_version'
        ORDER BY c.relname
        """,
        [list(kinds)],
    ).fetchall()
    return [row[0] for row in rows]


def qualified(table: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, table)


def insert(conn: psycopg.Connection[Any], table: str, values: Mapping[str, object]) -> dict[str, Any]:
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
        qualified(table),
        sql.SQL(", ").join(sql.Identifier(column) for column in values),
        sql.SQL(", ").join([sql.Placeholder()] * len(values)),
    )
    row = conn.cursor(row_factory=dict_row).execute(query, list(values.values())).fetchone()
    assert row is not None
    return row


def new_tenant(conn: psycopg.Connection[Any]) -> uuid.UUID:
    slug = f"t-{uuid.uuid4().hex[:12]}"
    return uuid.UUID(str(insert(conn, "tenants", {"name": slug, "slug": slug})["id"]))


def sample_rows(tenant_id: uuid.UUID, tag: str) -> dict[str, dict[str, object]]:
    """One valid row per table (besides tenants and the second jobs partition), in insertion order.

    The same `tag` gives the same per-tenant keys, so two tenants can hold rows with equal keys.
    """
    job_id = uuid.uuid5(uuid.NAMESPACE_URL, f"jobkeeper-test/{tag}")
    return {
        "queues": {
            "name": f"q-{tag}-{tenant_id.hex[:8]}",
            "tenant_id": tenant_id,
            "tier": "durable",
            "max_attempts": 3,
            "backoff": "fixed",
            "backoff_base_seconds": 1,
            "backoff_max_seconds": 1,
            "timeout_seconds": 10,
            "default_priority": 5,
        },
        "rate_limiters": {
            "name": f"l-{tag}-{tenant_id.hex[:8]}",
            "tenant_id": tenant_id,
            "rate_per_second": 5,
            "burst": 2,
            "tokens": 2,
        },
        "job_types": {"name": f"type-{tag}-{tenant_id.hex[:8]}", "queue": "money"},
        "jobs": {
            "tenant_id": tenant_id,
            "queue": "money",
            "type": "payment-process",
            "tier": "durable",
            "max_attempts": 10,
        },
        "dead_letter_jobs": {
            "tenant_id": tenant_id,
            "job_id": job_id,
            "queue": "money",
            "type": "payment-process",
            "payload": "{}",
            "priority": 7,
            "attempts": 10,
            "max_attempts": 10,
        },
        "schedules": {
            "tenant_id": tenant_id,
            "name": f"nightly-{tag}",
            "cron": "0 3 * * *",
            "queue": "background",
            "job_type": "generate-report",
        },
        "idempotency_keys": {
            "tenant_id": tenant_id,
            "key": f"order-{tag}",
            "job_id": job_id,
            "queue": "money",
            "job_type": "payment-process",
            "expires_at": datetime(2100, 1, 1).astimezone(),
        },
        "rate_limits": {
            "tenant_id": tenant_id,
            "key": f"user-{tag}",
            "capacity": 10,
            "refill_per_second": 1,
            "tokens": 10,
        },
        "queue_metrics": {
            "tenant_id": tenant_id,
            "queue": "money",
            "waiting": 0,
            "scheduled": 0,
            "running": 0,
            "completed": 0,
            "failed": 0,
            "dead": 0,
            "throughput_per_minute": 0,
        },
        "alert_history": {
            "tenant_id": tenant_id,
            "queue": "money",
            "rule": "queue-depth",
            "severity": "warning",
            "message": "deep",
        },
        "workers": {"hostname": "host", "pid": 42, "concurrency": 4},
        "leases": {
            "name": f"lease-{tag}-{tenant_id.hex[:8]}",
            "holder": uuid.uuid4(),
            "expires_at": datetime(2100, 1, 1).astimezone(),
        },
        "job_dependencies": {"tenant_id": tenant_id, "depends_on": job_id, "job_id": uuid.uuid4()},
    }


def index_shapes(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, tuple[str, ...], str | None]]:
    """(name, key columns with DESC marks, predicate) of every index on `table`."""
    rows = conn.execute(
        """
        SELECT i.indexrelid::regclass::text,
               array(SELECT pg_get_indexdef(i.indexrelid, k, true)
                            || CASE WHEN i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                     FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k),
               pg_get_expr(i.indpred, i.indrelid, true)
        FROM pg_index i
        WHERE i.indrelid = %s::regclass
        """,
        [f"{SCHEMA}.{table}"],
    ).fetchall()
    return [(name, tuple(keys), predicate) for name, keys, predicate in rows]


def policies(conn: psycopg.Connection[Any], table: str) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        """
        SELECT p.polname AS name, p.polcmd AS cmd, p.polpermissive AS permissive,
               array(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END
                     FROM unnest(p.polroles) AS r ORDER BY 1) AS roles,
               pg_get_expr(p.polqual, p.polrelid) AS using,
               pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
        FROM pg_policy p
        WHERE p.polrelid = %s::regclass
        """,
        [f"{SCHEMA}.{table}"],
    ).fetchall()
    return {row["name"]: row for row in rows}


# --- tables, keys and row-level security -------------------------------------------------------------------


def test_the_schema_holds_every_table_the_design_names(conn: psycopg.Connection[Any]) -> None:
    # Guards the table-driven tests below against passing on a table that does not exist.
    present = set(tables(conn))
    assert {*TENANT_TABLES, "tenants"} <= present


def test_every_table_has_a_primary_key(conn: psycopg.Connection[Any]) -> None:
    without = conn.execute(
        """
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper' AND c.relkind IN ('r', 'p')
          AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
        """
    ).fetchall()
    assert without == []


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_tenant_data_references_tenants_on_delete_restrict(conn: psycopg.Connection[Any], table: str) -> None:
    rows = conn.execute(
        """
        SELECT k.confdeltype
        FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attname = 'tenant_id'
        JOIN pg_attribute r ON r.attrelid = k.confrelid AND r.attname = 'id'
        WHERE k.contype = 'f' AND k.conrelid = %s::regclass AND k.confrelid = 'jobkeeper.tenants'::regclass
          AND k.conkey = ARRAY[a.attnum] AND k.confkey = ARRAY[r.attnum]
        """,
        [f"{SCHEMA}.{table}"],
    ).fetchall()
    assert rows == [("r",)], f"{table}.tenant_id must reference tenants(id) ON DELETE RESTRICT"


def test_deleting_a_tenant_that_still_has_jobs_is_refused(conn: psycopg.Connection[Any]) -> None:
    tenant = new_tenant(conn)
    insert(conn, "jobs", sample_rows(tenant, "restrict")["jobs"])
    # PostgreSQL reports ON DELETE RESTRICT as a foreign key or, in newer versions, a restrict violation.
    refused = (psycopg.errors.ForeignKeyViolation, psycopg.errors.RestrictViolation)
    with pytest.raises(refused), conn.transaction():
        conn.execute("DELETE FROM jobkeeper.tenants WHERE id = %s", [tenant])


def test_every_table_with_a_tenant_id_is_isolated_by_tenant(conn: psycopg.Connection[Any]) -> None:
    # A table added later with a tenant_id column must get the same treatment as the ones above.
    rows = conn.execute(
        """
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'jobkeeper' AND c.relkind IN ('r', 'p')
        """
    ).fetchall()
    with_tenant_id = {row[0] for row in rows}
    assert with_tenant_id == set(TENANT_TABLES)


def test_row_level_security_is_enabled_and_forced_everywhere(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper' AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
        """
    ).fetchall()
    assert len(rows) == len(tables(conn))
    assert [name for name, enabled, forced in rows if not (enabled and forced)] == []


@pytest.mark.parametrize("table", [*TENANT_TABLES, "tenants"])
def test_tenant_isolation_policy_reads_the_transaction_tenant(
    conn: psycopg.Connection[Any], table: str
) -> None:
    policy = policies(conn, table).get("tenant_isolation")
    assert policy is not None, f"{table} has no tenant_isolation policy"
    assert policy["roles"] == ["jobkeeper_api"]
    assert policy["permissive"]
    column = "id" if table == "tenants" else "tenant_id"
    assert policy["using"].startswith(f"({column} = ")
    assert TENANT_SETTING.search(policy["using"]), policy["using"]
    if policy["cmd"] != "r":  # a policy that allows writing must check the written rows too
        assert policy["with_check"] is not None
        assert TENANT_SETTING.search(policy["with_check"]), policy["with_check"]


def test_the_worker_role_has_a_policy_on_every_table(conn: psycopg.Connection[Any]) -> None:
    missing = []
    for table in tables(conn):
        policy = policies(conn, table).get("worker_all_tenants")
        if policy is None or policy["roles"] != ["jobkeeper_worker"] or policy["cmd"] != "*":
            missing.append(table)
    assert missing == []


def test_no_policy_applies_to_public(conn: psycopg.Connection[Any]) -> None:
    # A policy TO PUBLIC would also apply to every role of the cluster, the API role included.
    public = [
        (table, name)
        for table in tables(conn)
        for name, policy in policies(conn, table).items()
        if "PUBLIC" in policy["roles"]
    ]
    assert public == []


# --- timestamps --------------------------------------------------------------------------------------------


def test_every_table_has_timestamps_with_defaults(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """
        SELECT table_name, column_name, is_nullable, column_default, data_type
        FROM information_schema.columns
        WHERE table_schema = 'jobkeeper' AND column_name IN ('created_at', 'updated_at')
        """
    ).fetchall()
    found = {(table, column): (nullable, default, kind) for table, column, nullable, default, kind in rows}
    problems = []
    for table in tables(conn):
        for column in ("created_at", "updated_at"):
            nullable, default, kind = found.get((table, column), ("missing", None, None))
            if nullable != "NO" or default is None or kind != "timestamp with time zone":
                problems.append(f"{table}.{column}: nullable={nullable} default={default} type={kind}")
    assert problems == []


def _insert_one_row_everywhere(conn: psycopg.Connection[Any]) -> None:
    tenant = new_tenant(conn)
    rows = sample_rows(tenant, "touch")
    for table, values in rows.items():
        insert(conn, table, values)
    insert(
        conn, "jobs", {**rows["jobs"], "queue": "background", "type": "analytics-track", "tier": "ephemeral"}
    )


def test_updating_a_row_advances_updated_at(db_url: str) -> None:
    # now() is the transaction's start time, so the insert and the update run in two committed
    # transactions: the update's now() is strictly later than every timestamp the insert wrote.
    def stamps(conn: psycopg.Connection[Any], table: str) -> tuple[Any, ...]:
        query = sql.SQL(
            "SELECT count(*), min(created_at), max(created_at), min(updated_at), max(updated_at) FROM {}"
        ).format(qualified(table))
        row = conn.execute(query).fetchone()
        assert row is not None
        return tuple(row)

    with psycopg.connect(db_url) as conn:
        _insert_one_row_everywhere(conn)
        conn.commit()
        leaves = tables(conn, kinds=("r",))
        before = {table: stamps(conn, table) for table in leaves}
        assert [table for table, (count, *_) in before.items() if count == 0] == []
        conn.commit()

        started = conn.execute("SELECT now()").fetchone()
        assert started is not None
        for table in leaves:
            conn.execute(sql.SQL("UPDATE {} SET created_at = created_at").format(qualified(table)))
        conn.commit()

        for table in leaves:
            count, created_min, created_max, updated_min, _ = stamps(conn, table)
            old_count, old_created_min, old_created_max, _, old_updated_max = before[table]
            assert (count, created_min, created_max) == (old_count, old_created_min, old_created_max), table
            assert updated_min >= started[0] > old_updated_max, table


def test_inserted_rows_get_both_timestamps_from_the_database_clock(conn: psycopg.Connection[Any]) -> None:
    row = insert(conn, "jobs", sample_rows(new_tenant(conn), "clock")["jobs"])
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    assert row["created_at"] == row["updated_at"] == now[0]


# --- indexes and unique keys -------------------------------------------------------------------------------


def test_jobs_has_a_status_and_schedule_index(conn: psycopg.Connection[Any]) -> None:
    keys = [shape[1] for shape in index_shapes(conn, "jobs") if shape[2] is None]
    assert ("status", "scheduled_at") in keys


def test_jobs_has_a_partial_claim_index_on_every_partition(conn: psycopg.Connection[Any]) -> None:
    pending = [
        (name, keys)
        for name, keys, predicate in index_shapes(conn, "jobs")
        if predicate == "status = 'pending'::text"
    ]
    # One index of pending jobs only (migration 0007 dropped the queue-wide one the fair index replaces).
    assert [keys for _, keys in pending] == [("queue", "tenant_id", "priority DESC", "scheduled_at")], pending
    claim = [name for name, _ in pending]
    # A partitioned index is only used when every partition has its own attached copy.
    attached = conn.execute(
        """
        SELECT p.inhrelid::regclass::text, i.indrelid::regclass::text, i.indisvalid
        FROM pg_inherits p JOIN pg_index i ON i.indexrelid = p.inhrelid
        WHERE p.inhparent = %s::regclass
        """,
        [claim[0]],
    ).fetchall()
    assert sorted((table, valid) for _, table, valid in attached) == [
        ("jobkeeper.jobs_ephemeral", True),
        ("jobkeeper.jobs_logged", True),
    ]


@pytest.mark.parametrize(("table", "columns"), TENANT_UNIQUE_KEYS.items())
def test_unique_keys_are_scoped_per_tenant(
    conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...]
) -> None:
    unique = conn.execute(
        """
        SELECT array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.n)
        FROM pg_constraint k
        WHERE k.conrelid = %s::regclass AND k.contype IN ('u', 'p')
        """,
        [f"{SCHEMA}.{table}"],
    ).fetchall()
    assert list(columns) in [row[0] for row in unique]

    first, second = new_tenant(conn), new_tenant(conn)
    insert(conn, table, sample_rows(first, "same")[table])
    insert(conn, table, sample_rows(second, "same")[table])  # the same key for another tenant
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        insert(conn, table, sample_rows(first, "same")[table])


# --- jobs partitioned by tier (DESIGN §2) ------------------------------------------------------------------


def test_each_tier_lands_in_its_partition(conn: psycopg.Connection[Any]) -> None:
    tenant = new_tenant(conn)
    job = sample_rows(tenant, "tiers")["jobs"]
    placed = {}
    for tier, queue in (("durable", "money"), ("fast", "communication"), ("ephemeral", "background")):
        row = conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING tableoid::regclass::text").format(
                qualified("jobs"),
                sql.SQL(", ").join(sql.Identifier(column) for column in job),
                sql.SQL(", ").join([sql.Placeholder()] * len(job)),
            ),
            list({**job, "tier": tier, "queue": queue}.values()),
        ).fetchone()
        assert row is not None
        placed[tier] = row[0]
    rows = conn.execute(
        """
        SELECT c.oid::regclass::text, c.relpersistence
        FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE i.inhparent = 'jobkeeper.jobs'::regclass
        """
    ).fetchall()
    persistence = dict(rows)
    assert persistence[placed["durable"]] == "p"  # permanent: WAL-logged, survives a crash
    assert persistence[placed["fast"]] == "p"
    assert persistence[placed["ephemeral"]] == "u"  # UNLOGGED: emptied by a crash
    assert persistence == {"jobkeeper.jobs_logged": "p", "jobkeeper.jobs_ephemeral": "u"}


def test_a_job_with_an_unknown_tier_is_rejected(conn: psycopg.Connection[Any]) -> None:
    job = sample_rows(new_tenant(conn), "tier")["jobs"]
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        insert(conn, "jobs", {**job, "tier": "forever"})


# --- CHECK constraints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("jobs", "priority", 0),
        ("jobs", "priority", 11),
        ("jobs", "status", "unknown"),
        ("jobs", "attempts", -1),
        ("jobs", "max_attempts", 0),
        ("dead_letter_jobs", "priority", 11),
        ("schedules", "priority", 0),
        ("schedules", "missed_policy", "sometimes"),
        ("rate_limiters", "rate_per_second", 0),
        ("rate_limiters", "rate_per_second", -1),
        ("rate_limiters", "burst", 0),
        ("queues", "tier", "bad"),
        ("queues", "default_priority", 11),
        ("alert_history", "severity", "loud"),
    ],
)
def test_check_constraints_reject_bad_values(
    conn: psycopg.Connection[Any], table: str, column: str, value: object
) -> None:
    row = sample_rows(new_tenant(conn), "check")[table]
    with conn.transaction(force_rollback=True):
        insert(conn, table, row)  # the row is valid as it is: only `column` makes it fail below
    with pytest.raises(psycopg.errors.CheckViolation) as failure, conn.transaction():
        insert(conn, table, {**row, column: value})
    assert column in (failure.value.diag.constraint_name or ""), failure.value


# --- seed data (DESIGN §3, §7) -----------------------------------------------------------------------------


def test_the_development_tenant_exists(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("SELECT active FROM jobkeeper.tenants WHERE id = %s", [DEV_TENANT_ID]).fetchone()
    assert str(DEV_TENANT_ID) == "00000000-0000-0000-0000-000000000001"
    assert row == (True,)


def test_the_default_queues_are_seeded(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """
        SELECT name, tenant_id, tier, max_attempts, backoff, backoff_base_seconds, backoff_jitter,
               timeout_seconds, default_priority, paused
        FROM jobkeeper.queues WHERE name IN ('money', 'communication', 'background')
        """
    ).fetchall()
    queues = {row[0]: row[1:] for row in rows}
    assert queues == {
        "money": (None, "durable", 10, "exponential", 2.0, True, 300.0, 7, False),
        "communication": (None, "fast", 3, "fixed", 5.0, False, 60.0, 5, False),
        "background": (None, "ephemeral", 2, "fixed", 10.0, False, 600.0, 5, False),
    }
    fixed = conn.execute(
        "SELECT bool_and(backoff_max_seconds = backoff_base_seconds) FROM jobkeeper.queues "
        "WHERE name IN ('communication', 'background')"
    ).fetchone()
    assert fixed == (True,)


def test_the_default_job_types_are_seeded(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("SELECT name, queue, idempotency_ttl_seconds FROM jobkeeper.job_types").fetchall()
    types = {name: (queue, ttl) for name, queue, ttl in rows}
    day = 86400.0
    expected_queues = {
        "payment-process": "money",
        "refund-process": "money",
        "nft-mint": "money",
        "payout-process": "money",
        "send-email": "communication",
        "send-sms": "communication",
        "send-push": "communication",
        "analytics-track": "background",
        "cleanup-old-data": "background",
        "generate-report": "background",
    }
    assert {name: types[name][0] for name in expected_queues if name in types} == expected_queues
    assert types["nft-mint"][1] == 365 * day
    assert types["payment-process"][1] == 90 * day
    assert types["send-email"][1] == day


def test_the_outbound_rate_limiters_are_seeded(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """
        SELECT name, tenant_id, rate_per_second, burst, max_concurrency, tokens
        FROM jobkeeper.rate_limiters WHERE name IN ('stripe', 'twilio', 'sendgrid', 'solana_rpc')
        """
    ).fetchall()
    limiters = {name: rest for name, *rest in rows}
    assert {name: rate for name, (_, rate, *_) in limiters.items()} == {
        "stripe": 100.0,
        "twilio": 10.0,
        "sendgrid": 50.0,
        "solana_rpc": 25.0,
    }
    for name, (tenant, _, burst, max_concurrency, tokens) in limiters.items():
        assert tenant is None, name  # shared by every tenant
        assert burst >= 1, name
        assert max_concurrency is not None, name
        assert max_concurrency >= 1, name
        assert 0 <= tokens <= burst, name


# --- roles (DESIGN §8) -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["jobkeeper_api", "jobkeeper_worker"])
def test_roles_cannot_log_in_or_bypass_row_level_security(conn: psycopg.Connection[Any], role: str) -> None:
    row = conn.execute(
        "SELECT rolcanlogin, rolbypassrls, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = %s",
        [role],
    ).fetchone()
    assert row == (False, False, False, False, False)


def test_the_api_role_does_not_inherit_the_worker_role(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "SELECT pg_has_role('jobkeeper_api', 'jobkeeper_worker', 'MEMBER'), "
        "pg_has_role('jobkeeper_worker', 'jobkeeper_api', 'MEMBER')"
    ).fetchone()
    assert row == (False, False)


def test_the_api_role_owns_nothing(conn: psycopg.Connection[Any]) -> None:
    # An owner is exempt from non-forced RLS and may ALTER or DROP: the API role must never be one.
    owned = conn.execute(
        """
        SELECT 'relation ' || relname FROM pg_class WHERE relowner = 'jobkeeper_api'::regrole
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = 'jobkeeper_api'::regrole
        UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = 'jobkeeper_api'::regrole
        """
    ).fetchall()
    assert owned == []


def test_the_api_role_cannot_truncate_reference_or_add_triggers(conn: psycopg.Connection[Any]) -> None:
    # TRUNCATE ignores row-level security, so it would empty every tenant's rows at once.
    granted = [
        (table, privilege)
        for table in tables(conn)
        for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER")
        if conn.execute(
            "SELECT has_table_privilege('jobkeeper_api', %s, %s)", [f"{SCHEMA}.{table}", privilege]
        ).fetchone()
        == (True,)
    ]
    assert granted == []


def test_the_migrating_user_is_a_member_of_both_roles(conn: psycopg.Connection[Any]) -> None:
    # Membership in jobkeeper_worker is what lets a non-superuser owner see every tenant under FORCEd RLS.
    rows = conn.execute(
        """
        SELECT m.roleid::regrole::text
        FROM pg_auth_members m
        WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)
          AND m.roleid IN ('jobkeeper_api'::regrole, 'jobkeeper_worker'::regrole)
        """
    ).fetchall()
    assert sorted(row[0] for row in rows) == ["jobkeeper_api", "jobkeeper_worker"]
