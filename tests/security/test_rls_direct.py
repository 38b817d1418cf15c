"""Direct SQL as the API role (issue 10, item 9): a login that is a member of `jobkeeper_api` only, as an
attacker with the API's database rights would have, cannot read or change another tenant's rows in any
table, with the tenant setting of A, without one, or with a forged one; nor leave the role or switch row
security off. tests/integration/test_row_level_security.py checks the policies table by table from the
owner's session (SET LOCAL ROLE); here the session itself is the API role, every tenant table of the schema
is found from the catalog (a new table without a seed row fails `test_every_tenant_table_is_covered`), and
the escape hatches are tried.

The boundary this proves: whoever runs SQL as `jobkeeper_api` sees the tenant named by
`jobkeeper.tenant_id`, and only that one. The setting itself is trusted input: the API sets it from a
verified token, transaction-locally, and runs only its own parameterised queries; a session that can run
arbitrary SQL could name another tenant, which is why the API role must never be handed out as a login.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.store.test_row_level_security import _insert, _rows

Conn = psycopg.Connection[Any]

TENANT_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'jobkeeper' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""

FORGED = [
    "",
    " ",
    "null",
    "NULL",
    "*",
    "%",
    "00000000-0000-0000-0000-000000000000",
    "{a} OR true",
    "{a}' OR '1'='1",
    "{a},{b}",
    "{{{a},{b}}}",
    "{a} {b}",
    "{a}\x01",
    "' OR tenant_id IS NOT NULL --",
]


def _login_url(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"))


@pytest.fixture(scope="module")
def seeded(db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two tenants with two rows of each kind in every tenant table (shared rows are seeded already)."""
    ids = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(2):
            slug = f"direct-{uuid.uuid4().hex[:10]}"
            row = conn.execute(
                "INSERT INTO jobkeeper.tenants (name, slug) VALUES (%s, %s) RETURNING id", (slug, slug)
            ).fetchone()
            assert row is not None
            tenant: uuid.UUID = row[0]
            ids.append(tenant)
            extra: dict[str, dict[str, object]] = {
                "queues": {
                    "name": f"own-{tenant.hex[:12]}",
                    "tenant_id": tenant,
                    "tier": "durable",
                    "max_attempts": 3,
                    "backoff": "fixed",
                    "backoff_base_seconds": 1,
                    "backoff_max_seconds": 1,
                    "timeout_seconds": 10,
                    "default_priority": 5,
                },
                "rate_limiters": {
                    "name": f"own-{tenant.hex[:12]}",
                    "tenant_id": tenant,
                    "rate_per_second": 1,
                    "burst": 1,
                    "tokens": 1,
                },
                "queue_metrics": {
                    "tenant_id": tenant,
                    "queue": "money",
                    "waiting": 1,
                    "scheduled": 0,
                    "running": 0,
                    "completed": 0,
                    "failed": 0,
                    "dead": 0,
                    "throughput_per_minute": 0,
                },
            }
            for _ in range(2):
                for table, values in (_rows(tenant) | extra).items():
                    if table in ("queues", "rate_limiters"):
                        values = values | {"name": f"{values['name']}-{uuid.uuid4().hex[:4]}"}
                    _insert(conn, table, values)
    return ids[0], ids[1]


@pytest.fixture(scope="module")
def api_login(admin_url: str, db_url: str) -> Iterator[str]:
    """The URL of a login that is a member of jobkeeper_api and nothing else."""
    name = f"jk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    role = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOINHERIT NOBYPASSRLS").format(role))
        conn.execute(sql.SQL("GRANT jobkeeper_api TO {}").format(role))
        conn.execute(sql.SQL("ALTER ROLE {} SET role = 'jobkeeper_api'").format(role))
    try:
        yield _login_url(db_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


@pytest.fixture
def api(api_login: str) -> Iterator[Conn]:
    with psycopg.connect(api_login) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("jobkeeper_api",)
        yield conn
        conn.rollback()


def tenant_tables(conn: Conn) -> list[str]:
    return [row[0] for row in conn.execute(TENANT_TABLES).fetchall()]


@contextmanager
def tenant(conn: Conn, value: str | None) -> Iterator[None]:
    """A transaction with the tenant setting as given (None: not set), rolled back."""
    with conn.transaction(force_rollback=True):
        if value is not None:
            conn.execute("SELECT set_config('jobkeeper.tenant_id', %s, true)", (value,))
        yield


def visible(conn: Conn, table: str) -> list[uuid.UUID | None]:
    cur = conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(sql.Identifier("jobkeeper", table)))
    return [row[0] for row in cur.fetchall()]


def test_every_tenant_table_is_covered(db_url: str, seeded: tuple[uuid.UUID, uuid.UUID]) -> None:
    """Every table with a tenant_id forces row-level security and has rows of both tenants here."""
    a, b = seeded
    with psycopg.connect(db_url) as owner:
        rows = owner.execute(TENANT_TABLES).fetchall()
        assert len(rows) >= 9
        for name, enabled, forced in rows:
            assert (enabled, forced) == (True, True), name
            table = sql.Identifier("jobkeeper", name)
            for t in (a, b):
                found = owner.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(table), (t,)
                )
                assert found.fetchone() == (2,), f"{name} has no seed rows: add them to `seeded`"
        role = owner.execute(
            "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'jobkeeper_api'"
        ).fetchone()
        assert role == (False, False, False)


def test_with_tenant_a_nothing_of_b_is_reachable(api: Conn, seeded: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = seeded
    for table in tenant_tables(api):
        target = sql.Identifier("jobkeeper", table)
        with tenant(api, str(a)):
            seen = visible(api, table)
            assert b not in seen, table
            assert seen.count(a) == 2, table
            assert set(seen) <= {a, None}, table
            with api.cursor().copy(
                sql.SQL("COPY (SELECT tenant_id FROM {}) TO STDOUT").format(target)
            ) as copy:
                copied = b"".join(bytes(chunk) for chunk in copy)
            assert str(b).encode() not in copied, table
            # Writes aimed at B touch nothing, whatever the statement says.
            for statement in (
                sql.SQL("UPDATE {} SET tenant_id = tenant_id WHERE tenant_id = %s"),
                sql.SQL("DELETE FROM {} WHERE tenant_id = %s"),
            ):
                try:
                    with api.transaction():
                        assert api.execute(statement.format(target), (b,)).rowcount == 0, table
                except psycopg.errors.InsufficientPrivilege:
                    pass  # no write privilege on this table at all
            # Moving A's rows to B is refused by the policy's WITH CHECK (or by missing privileges).
            with pytest.raises(psycopg.errors.InsufficientPrivilege), api.transaction():
                api.execute(
                    sql.SQL("UPDATE {} SET tenant_id = %s WHERE tenant_id = %s").format(target), (b, a)
                )


def test_a_tenant_cannot_insert_for_another(api: Conn, seeded: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = seeded
    for table, values in _rows(b).items():
        with tenant(api, str(a)), pytest.raises(psycopg.errors.InsufficientPrivilege):
            _insert(api, table, values)


@pytest.mark.parametrize("forged", FORGED)
def test_a_missing_or_forged_setting_reveals_nothing(
    api: Conn, seeded: tuple[uuid.UUID, uuid.UUID], forged: str
) -> None:
    a, b = seeded
    value = forged.format(a=a, b=b)
    for table in tenant_tables(api):
        for setting in (None, value):
            with tenant(api, setting):
                try:
                    with api.transaction():
                        seen = visible(api, table)
                except (psycopg.errors.InvalidTextRepresentation, psycopg.errors.DataException):
                    continue  # not a UUID: the policy fails closed
                assert a not in seen, (table, setting, seen)
                assert b not in seen, (table, setting, seen)


@pytest.mark.parametrize(
    "statement",
    [
        "SET ROLE jobkeeper_worker",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "ALTER TABLE jobkeeper.jobs DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE jobkeeper.jobs NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON jobkeeper.jobs",
        "CREATE POLICY open ON jobkeeper.jobs USING (true)",
        "TRUNCATE jobkeeper.jobs",
        "TRUNCATE jobkeeper.dead_letter_jobs",
        "SELECT * FROM jobkeeper.jobs_logged",
        "SELECT * FROM jobkeeper.jobs_ephemeral",
        "CREATE FUNCTION jobkeeper.peek() RETURNS SETOF uuid LANGUAGE sql SECURITY DEFINER"
        " AS 'SELECT tenant_id FROM jobkeeper.jobs'",
        "CREATE VIEW jobkeeper.everything AS SELECT * FROM jobkeeper.jobs",
        "GRANT jobkeeper_worker TO jobkeeper_api",
        "ALTER ROLE jobkeeper_api BYPASSRLS",
    ],
)
def test_the_api_role_cannot_leave_its_box(
    api: Conn, seeded: tuple[uuid.UUID, uuid.UUID], statement: str
) -> None:
    a, _ = seeded
    with tenant(api, str(a)), pytest.raises(psycopg.errors.InsufficientPrivilege), api.transaction():
        api.execute(statement.encode())


def test_no_function_callable_by_the_api_role_runs_with_more_rights(api: Conn) -> None:
    """No SECURITY DEFINER function in the schema (it would run as the owner, around the policies)."""
    rows = api.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'jobkeeper' AND p.prosecdef"
        " AND has_function_privilege('jobkeeper_api', p.oid, 'EXECUTE')"
    ).fetchall()
    assert rows == []
