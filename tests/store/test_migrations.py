"""Migrations: upgrade, downgrade to base and upgrade again give the same schema; upgrades are idempotent;
every named query plans against the migrated schema; the `jobkeeper db` commands work (STYLE §2, §3).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
import pytest
from psycopg import sql

from jobkeeper.store import migrate
from jobkeeper.store.queries import all_queries
from tests.support import with_database

REVISION = importlib.import_module("jobkeeper.store.migrations.versions.0001_initial")
UPGRADE = cast(LiteralString, REVISION.UPGRADE)
JOBKEEPER = Path(sys.executable).parent / "jobkeeper"

Snapshot = dict[str, list[tuple[Any, ...]]]

# Each query describes one kind of schema object by its definition, never by OID, so that two databases
# (or one database before and after a round trip) can be compared.
_SNAPSHOT_QUERIES: dict[str, LiteralString] = {
    "schema": """
        SELECT nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace WHERE nspname = 'jobkeeper'
    """,
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
               c.relispartition, pg_get_expr(c.relpartbound, c.oid), pg_get_userbyid(c.relowner),
               c.relacl::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper'
    """,
    "partitioning": """
        SELECT c.relname, p.partstrat, p.partattrs::text
        FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper'
    """,
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'jobkeeper' AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
    """,
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.condeferrable, k.convalidated,
               k.conislocal
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper'
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'jobkeeper'
    """,
    "policies": """
        SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check
        FROM pg_policies WHERE schemaname = 'jobkeeper'
    """,
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jobkeeper' AND NOT t.tgisinternal
    """,
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               pg_get_userbyid(p.proowner), p.proacl::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'jobkeeper'
    """,
    "types": """
        SELECT t.typname, t.typtype
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'jobkeeper'
    """,
    "roles": """
        SELECT r.rolname, r.rolcanlogin, r.rolbypassrls, r.rolsuper, r.rolinherit,
               pg_has_role(current_user, r.oid, 'MEMBER')
        FROM pg_roles r WHERE r.rolname IN ('jobkeeper_api', 'jobkeeper_worker')
    """,
}

# The seeded rows, without the timestamps a later run of the seeds would change.
_SEED_QUERIES: dict[str, LiteralString] = {
    "tenants": "SELECT (to_jsonb(t) - 'created_at' - 'updated_at')::text FROM jobkeeper.tenants t",
    "queues": "SELECT (to_jsonb(q) - 'created_at' - 'updated_at')::text FROM jobkeeper.queues q",
    "rate_limiters": """
        SELECT (to_jsonb(l) - 'created_at' - 'updated_at' - 'refilled_at')::text
        FROM jobkeeper.rate_limiters l
    """,
    "job_types": "SELECT (to_jsonb(j) - 'created_at' - 'updated_at')::text FROM jobkeeper.job_types j",
}


def snapshot(url: str, *, seeds: bool = True) -> Snapshot:
    """Everything the migrations define in `url`, each kind sorted, comparable across databases."""
    queries = {**_SNAPSHOT_QUERIES, **(_SEED_QUERIES if seeds else {})}
    with psycopg.connect(url) as conn:
        return {
            kind: sorted((tuple(row) for row in conn.execute(query).fetchall()), key=repr)
            for kind, query in queries.items()
        }


def assert_same(actual: Snapshot, expected: Snapshot) -> None:
    # One assertion per kind of object, so a failure names what differs.
    assert actual.keys() == expected.keys()
    for kind in expected:
        assert actual[kind] == expected[kind], f"{kind} differ"


@pytest.fixture(scope="module")
def reference(shared_db_url: str) -> Snapshot:
    """The schema a clean upgrade from nothing produces (the session's template, cloned)."""
    return snapshot(shared_db_url)


def run_sql_by_hand(url: str, text: LiteralString) -> None:
    """Run SQL as a DBA would, outside Alembic, in one transaction, after creating the schema."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS jobkeeper")
        conn.execute(text)


# --- round trip --------------------------------------------------------------------------------------------


def test_upgrade_downgrade_upgrade_gives_the_same_schema(empty_db_url: str, reference: Snapshot) -> None:
    assert migrate.current(empty_db_url) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == migrate.head()
    first = snapshot(empty_db_url)
    assert_same(first, reference)

    migrate.downgrade(empty_db_url, "base")
    assert migrate.current(empty_db_url) is None
    assert_only_the_version_table_is_left(empty_db_url)
    assert_the_owner_keeps_the_roles_other_databases_use(empty_db_url)

    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == migrate.head()
    assert_same(snapshot(empty_db_url), first)


def assert_only_the_version_table_is_left(url: str) -> None:
    left = snapshot(url, seeds=False)
    assert [row[:2] for row in left["relations"]] == [("alembic_version", "r"), ("alembic_version_pkc", "i")]
    assert [row[0] for row in left["types"]] == ["_alembic_version", "alembic_version"]
    assert {row[0] for row in left["constraints"]} == {"alembic_version"}
    for kind in ("partitioning", "policies", "triggers", "functions"):
        assert left[kind] == [], kind
    with psycopg.connect(url) as conn:
        # No grant of this database still names the roles, so they can be dropped once no other
        # database of the cluster uses them.
        refs = conn.execute(
            """
            SELECT count(*) FROM pg_shdepend
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND refclassid = 'pg_authid'::regclass
              AND refobjid IN (SELECT oid FROM pg_roles
                               WHERE rolname IN ('jobkeeper_api', 'jobkeeper_worker'))
            """
        ).fetchone()
        assert refs == (0,)


def assert_the_owner_keeps_the_roles_other_databases_use(url: str) -> None:
    # Roles and memberships are cluster-wide, and the session's template and shared databases still use
    # them: without its membership in jobkeeper_worker, a non-superuser owner of those databases would no
    # longer see their rows under FORCEd RLS.
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT r.rolname FROM pg_roles r
            JOIN pg_auth_members m ON m.roleid = r.oid
            WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)
              AND r.rolname IN ('jobkeeper_api', 'jobkeeper_worker')
            """
        ).fetchall()
    assert sorted(row[0] for row in rows) == ["jobkeeper_api", "jobkeeper_worker"]


def test_downgrade_to_base_succeeds_with_jobs_and_user_configuration(db_url: str) -> None:
    # `jobkeeper db downgrade base` warns that data is lost; it must not fail because rows exist.
    with psycopg.connect(db_url) as conn:
        tenant = conn.execute(
            "INSERT INTO jobkeeper.tenants (name, slug) VALUES ('Other', 'other') RETURNING id"
        ).fetchone()
        assert tenant is not None
        dev = "00000000-0000-0000-0000-000000000001"
        for owner in (dev, tenant[0]):
            conn.execute(
                "INSERT INTO jobkeeper.jobs (tenant_id, queue, type, tier, max_attempts) "
                "VALUES (%s, 'money', 'payment-process', 'durable', 10), "
                "       (%s, 'background', 'analytics-track', 'ephemeral', 2)",
                [owner, owner],
            )
            conn.execute(
                "INSERT INTO jobkeeper.schedules (tenant_id, name, cron, queue, job_type) "
                "VALUES (%s, 'nightly', '0 3 * * *', 'background', 'generate-report')",
                [owner],
            )
            conn.execute(
                "INSERT INTO jobkeeper.alert_history (tenant_id, queue, rule, severity, message) "
                "VALUES (%s, 'money', 'depth', 'warning', 'deep')",
                [owner],
            )
        conn.execute(
            "INSERT INTO jobkeeper.queues (name, tenant_id, tier, max_attempts, backoff, "
            "backoff_base_seconds, backoff_max_seconds, timeout_seconds, default_priority) "
            "VALUES ('custom', %s, 'fast', 3, 'fixed', 1, 1, 10, 5)",
            [dev],
        )
        conn.execute(
            "INSERT INTO jobkeeper.rate_limiters (name, tenant_id, rate_per_second, burst, tokens, "
            "limiter_group) VALUES ('stripe-eu', %s, 10, 1, 1, 'stripe')",
            [dev],
        )
        conn.execute(
            "INSERT INTO jobkeeper.job_types (name, queue, limiter) VALUES ('charge', 'custom', 'stripe')"
        )
    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None
    assert [row[0] for row in snapshot(db_url, seeds=False)["relations"]] == [
        "alembic_version",
        "alembic_version_pkc",
    ]
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head()


# --- idempotent upgrades (seed 001 MIG17) ------------------------------------------------------------------


def test_upgrading_again_changes_nothing(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:  # an operator tunes a seeded queue
        conn.execute("UPDATE jobkeeper.queues SET max_attempts = 4 WHERE name = 'money'")
    before = snapshot(db_url)
    revision = migrate.current(db_url)

    migrate.upgrade(db_url)
    assert migrate.current(db_url) == revision == migrate.head()
    assert_same(snapshot(db_url), before)

    # The revision's SQL itself is idempotent too, and its seeds never overwrite what an operator changed.
    run_sql_by_hand(db_url, UPGRADE)
    assert_same(snapshot(db_url), before)


def test_upgrade_over_objects_created_by_hand(empty_db_url: str, reference: Snapshot) -> None:
    run_sql_by_hand(empty_db_url, UPGRADE)
    assert migrate.current(empty_db_url) is None  # Alembic has not recorded anything yet
    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == migrate.head()
    assert_same(snapshot(empty_db_url), reference)


def _half_created(state: str) -> LiteralString:
    """SQL that leaves the schema half made, taken from the revision so that objects match its own."""
    if state == "tenants-table-and-dev-tenant":
        match = re.search(r"CREATE TABLE IF NOT EXISTS jobkeeper\.tenants \(.*?\n\);", UPGRADE, re.DOTALL)
        assert match is not None
        return match.group(0) + (
            "\nINSERT INTO jobkeeper.tenants (id, name, slug)"
            " VALUES ('00000000-0000-0000-0000-000000000001', 'Development', 'development');"
        )
    # Everything up to the grants: tables, indexes and triggers exist; no privileges, policies or seeds.
    head, found, _ = UPGRADE.partition("\nGRANT USAGE ON SCHEMA jobkeeper")
    assert found
    return head


@pytest.mark.parametrize(
    "state", ["tenants-table-and-dev-tenant", "everything-but-grants-policies-and-seeds"]
)
def test_upgrade_over_a_half_created_schema(empty_db_url: str, reference: Snapshot, state: str) -> None:
    run_sql_by_hand(empty_db_url, _half_created(state))
    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == migrate.head()
    assert_same(snapshot(empty_db_url), reference)


# --- named queries (STYLE §2) ------------------------------------------------------------------------------

_PARAMETER = re.compile(r"%\((\w+)\)[sb]")
_COMMENT = re.compile(r"--[^\n]*")
# Statements EXPLAIN plans; LISTEN and UNLISTEN cannot be planned, and take effect only at commit, so they
# run for real inside the rolled-back transaction.
_PLANNABLE = {"select", "insert", "update", "delete", "with", "values", "merge", "table"}
_RUN_AND_ROLL_BACK = {"listen", "unlisten"}


@pytest.mark.parametrize("name", sorted(all_queries()))
def test_every_named_query_plans_against_the_schema(conn: psycopg.Connection[Any], name: str) -> None:
    query = all_queries()[name]
    keyword = _COMMENT.sub("", query).split(None, 1)[0].lower()
    # psycopg reads placeholders in comments too, so every one found anywhere is bound.
    parameters = dict.fromkeys(_PARAMETER.findall(query)) or None
    with conn.transaction(force_rollback=True):
        if keyword in _PLANNABLE:
            assert conn.execute(sql.SQL("EXPLAIN ") + sql.SQL(query), parameters).fetchall()
        elif keyword in _RUN_AND_ROLL_BACK:
            conn.execute(query, parameters)
        else:
            pytest.fail(f"{name}: no way to check a {keyword.upper()} statement without running it")


def test_the_query_files_hold_queries() -> None:
    assert len(all_queries()) > 0


# --- the CLI -----------------------------------------------------------------------------------------------


def run_cli(*args: str, database_url: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, PYTHONUTF8="1", **settings)
    return subprocess.run(
        [str(JOBKEEPER), *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def test_db_commands_upgrade_report_and_downgrade(empty_db_url: str) -> None:
    head = migrate.head()
    steps = [
        (["db", "current"], f"none (behind head {head})", None),
        (["db", "upgrade"], f"none -> {head}", head),
        (["db", "current"], f"{head} (head)", head),
        (["db", "downgrade", "base", "--yes"], f"{head} -> base", None),
    ]
    for args, expected, revision in steps:
        done = run_cli(*args, database_url=empty_db_url)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stdout.strip() == expected, args
        assert migrate.current(empty_db_url) == revision, args


def test_the_sql_printed_for_review_builds_the_schema(empty_db_url: str, reference: Snapshot) -> None:
    # What a DBA reviews (`jobkeeper db sql`) is what runs: applying it by hand, then upgrading (which
    # records the revision), gives the schema a clean upgrade gives.
    run_sql_by_hand(empty_db_url, migrate.upgrade_sql())
    migrate.upgrade(empty_db_url)
    assert_same(snapshot(empty_db_url), reference)


def test_a_malformed_setting_is_named_in_one_line(admin_url: str) -> None:
    # Settings are checked before anything connects: the database named here does not even exist.
    done = run_cli(
        "db", "upgrade", database_url=with_database(admin_url, "jk_never_created"), JOBKEEPER_POOL_MAX="abc"
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "JOBKEEPER_POOL_MAX" in lines[0]
    assert "abc" in lines[0]
    assert done.stdout == ""
