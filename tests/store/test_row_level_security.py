"""Row-level security as the API and worker roles see it (DESIGN §8).

Two tenants' rows are written by the owner connection; the checks then run inside a savepoint as
`SET LOCAL ROLE jobkeeper_api` with the tenant set by `set_config('jobkeeper.tenant_id', …, true)`, as an
API request does, and the savepoint is rolled back afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

SCHEMA = "jobkeeper"

# Tables whose every row belongs to a tenant, with a column the tests may update harmlessly.
TENANT_ROWS = {
    "jobs": "progress",
    "dead_letter_jobs": "last_error",
    "schedules": "active",
    "idempotency_keys": "result",
    "alert_history": "message",
    "rate_limits": "tokens",
    "job_dependencies": "created_at",
}
UPDATES: dict[str, object] = {
    "created_at": datetime(2000, 1, 1).astimezone(),
    "progress": None,
    "last_error": "edited",
    "active": False,
    "result": None,
    "message": "edited",
    "tokens": 0,
}


@dataclass(frozen=True)
class Tenants:
    a: uuid.UUID
    b: uuid.UUID


def _rows(tenant: uuid.UUID) -> dict[str, dict[str, object]]:
    job_id = uuid.uuid4()
    return {
        "jobs": {
            "tenant_id": tenant,
            "queue": "money",
            "type": "payment-process",
            "tier": "durable",
            "max_attempts": 10,
        },
        "dead_letter_jobs": {
            "tenant_id": tenant,
            "job_id": job_id,
            "queue": "money",
            "type": "payment-process",
            "payload": "{}",
            "priority": 7,
            "attempts": 10,
            "max_attempts": 10,
        },
        "schedules": {
            "tenant_id": tenant,
            "name": f"nightly-{uuid.uuid4().hex[:8]}",
            "cron": "0 3 * * *",
            "queue": "background",
            "job_type": "generate-report",
        },
        "idempotency_keys": {
            "tenant_id": tenant,
            "key": f"order-{uuid.uuid4().hex[:8]}",
            "job_id": job_id,
            "queue": "money",
            "job_type": "payment-process",
            "expires_at": datetime(2100, 1, 1).astimezone(),
        },
        "alert_history": {
            "tenant_id": tenant,
            "queue": "money",
            "rule": "queue-depth",
            "severity": "warning",
            "message": "deep",
        },
        "rate_limits": {
            "tenant_id": tenant,
            "key": f"user-{uuid.uuid4().hex[:8]}",
            "capacity": 10,
            "refill_per_second": 1,
            "tokens": 10,
        },
        "job_dependencies": {"tenant_id": tenant, "depends_on": uuid.uuid4(), "job_id": uuid.uuid4()},
    }


def _insert(conn: psycopg.Connection[Any], table: str, values: dict[str, object]) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(SCHEMA, table),
            sql.SQL(", ").join(sql.Identifier(column) for column in values),
            sql.SQL(", ").join([sql.Placeholder()] * len(values)),
        ),
        list(values.values()),
    )


@pytest.fixture
def tenants(conn: psycopg.Connection[Any]) -> Tenants:
    """Two tenants with two rows of each kind in every tenant table, written by the owner."""
    ids = []
    for _ in range(2):
        slug = f"t-{uuid.uuid4().hex[:12]}"
        row = conn.execute(
            "INSERT INTO jobkeeper.tenants (name, slug) VALUES (%s, %s) RETURNING id", [slug, slug]
        ).fetchone()
        assert row is not None
        tenant = row[0]
        ids.append(tenant)
        for _ in range(2):
            for table, values in _rows(tenant).items():
                _insert(conn, table, values)
        _insert(
            conn,
            "queues",
            {
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
        )
        _insert(
            conn,
            "rate_limiters",
            {
                "name": f"own-{tenant.hex[:12]}",
                "tenant_id": tenant,
                "rate_per_second": 1,
                "burst": 1,
                "tokens": 1,
            },
        )
    return Tenants(a=ids[0], b=ids[1])


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any], role: str, tenant: uuid.UUID | str | None = None
) -> Iterator[None]:
    """Run the block as `role` for `tenant`, like a request does; everything it did is rolled back."""
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        if tenant is not None:
            conn.execute("SELECT set_config('jobkeeper.tenant_id', %s, true)", [str(tenant)])
        yield


def visible_tenants(conn: psycopg.Connection[Any], table: str) -> list[uuid.UUID | None]:
    """The tenant of every row `table` shows the current role, sorted."""
    rows = conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(sql.Identifier(SCHEMA, table))).fetchall()
    return sorted((row[0] for row in rows), key=str)


def count_for(conn: psycopg.Connection[Any], table: str, tenant: uuid.UUID) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(sql.Identifier(SCHEMA, table)),
        [tenant],
    ).fetchone()
    assert row is not None
    return int(row[0])


# --- reading -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TENANT_ROWS)
def test_a_tenant_sees_only_its_own_rows(conn: psycopg.Connection[Any], tenants: Tenants, table: str) -> None:
    with acting_as(conn, "jobkeeper_api", tenants.a):
        assert visible_tenants(conn, table) == [tenants.a, tenants.a]
    with acting_as(conn, "jobkeeper_api", tenants.b):
        assert visible_tenants(conn, table) == [tenants.b, tenants.b]


def test_a_tenant_sees_only_its_own_tenant_row(conn: psycopg.Connection[Any], tenants: Tenants) -> None:
    with acting_as(conn, "jobkeeper_api", tenants.a):
        rows = conn.execute("SELECT id FROM jobkeeper.tenants").fetchall()
    assert rows == [(tenants.a,)]


@pytest.mark.parametrize("tenant", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("table", [*TENANT_ROWS, "queue_metrics"])
def test_without_a_tenant_the_api_role_sees_no_tenant_rows(
    conn: psycopg.Connection[Any], tenants: Tenants, table: str, tenant: str | None
) -> None:
    _insert(
        conn,
        "queue_metrics",
        {
            "tenant_id": tenants.a,
            "queue": "money",
            "waiting": 1,
            "scheduled": 0,
            "running": 0,
            "completed": 0,
            "failed": 0,
            "dead": 0,
            "throughput_per_minute": 0,
        },
    )
    assert count_for(conn, table, tenants.a) > 0  # the owner sees them
    with acting_as(conn, "jobkeeper_api", tenant):
        assert visible_tenants(conn, table) == []
        assert conn.execute("SELECT id FROM jobkeeper.tenants").fetchall() == []


@pytest.mark.parametrize("table", ["queues", "rate_limiters"])
def test_shared_rows_are_readable_by_every_tenant(
    conn: psycopg.Connection[Any], tenants: Tenants, table: str
) -> None:
    query = sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY tenant_id").format(
        sql.Identifier(SCHEMA, table)
    )
    with acting_as(conn, "jobkeeper_api", tenants.a):
        seen = dict(conn.execute(query).fetchall())
    assert set(seen) == {None, tenants.a}  # shared rows and A's own, never B's
    assert seen[None] >= 3


def test_shared_queues_cannot_be_changed_by_a_tenant(conn: psycopg.Connection[Any], tenants: Tenants) -> None:
    with acting_as(conn, "jobkeeper_api", tenants.a):
        try:
            with conn.transaction():
                changed = conn.execute(
                    "UPDATE jobkeeper.queues SET paused = true, max_attempts = 1 WHERE name = 'money'"
                ).rowcount
        except psycopg.errors.InsufficientPrivilege:
            changed = 0
        assert changed == 0
    row = conn.execute("SELECT paused, max_attempts FROM jobkeeper.queues WHERE name = 'money'").fetchone()
    assert row == (False, 10)


@pytest.mark.parametrize("partition", ["jobs_logged", "jobs_ephemeral"])
def test_the_api_role_cannot_read_jobs_partitions_directly(
    conn: psycopg.Connection[Any], tenants: Tenants, partition: str
) -> None:
    denied = pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied")
    with acting_as(conn, "jobkeeper_api", tenants.a):
        with denied, conn.transaction():
            conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, partition)))
        # …while the partitioned parent, under its policy, works.
        assert conn.execute("SELECT count(*) FROM jobkeeper.jobs").fetchone() == (2,)


# --- writing -----------------------------------------------------------------------------------------------

_VIOLATES_POLICY = "new row violates row-level security policy"


@pytest.mark.parametrize("table", TENANT_ROWS)
def test_a_tenant_cannot_insert_rows_for_another_tenant(
    conn: psycopg.Connection[Any], tenants: Tenants, table: str
) -> None:
    rejected = pytest.raises(psycopg.errors.InsufficientPrivilege, match=_VIOLATES_POLICY)
    with acting_as(conn, "jobkeeper_api", tenants.a):
        _insert(conn, table, _rows(tenants.a)[table])  # its own: allowed
        with rejected, conn.transaction():
            _insert(conn, table, _rows(tenants.b)[table])


@pytest.mark.parametrize("table", TENANT_ROWS)
def test_a_tenant_cannot_update_or_delete_another_tenants_rows(
    conn: psycopg.Connection[Any], tenants: Tenants, table: str
) -> None:
    column = sql.Identifier(TENANT_ROWS[table])
    target = sql.Identifier(SCHEMA, table)
    update = sql.SQL("UPDATE {} SET {} = %s WHERE tenant_id = %s").format(target, column)
    delete = sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(target)
    value = UPDATES[TENANT_ROWS[table]]
    with acting_as(conn, "jobkeeper_api", tenants.a):
        assert conn.execute(update, [value, tenants.b]).rowcount == 0
        assert conn.execute(delete, [tenants.b]).rowcount == 0
        # Without a WHERE clause the policy alone decides: only A's two rows.
        assert conn.execute(sql.SQL("UPDATE {} SET {} = {}").format(target, column, column)).rowcount == 2
        assert conn.execute(sql.SQL("DELETE FROM {}").format(target)).rowcount == 2
    assert count_for(conn, table, tenants.b) == 2


@pytest.mark.parametrize("table", TENANT_ROWS)
def test_a_tenant_cannot_hand_its_rows_to_another_tenant(
    conn: psycopg.Connection[Any], tenants: Tenants, table: str
) -> None:
    update = sql.SQL("UPDATE {} SET tenant_id = %s").format(sql.Identifier(SCHEMA, table))
    rejected = pytest.raises(psycopg.errors.InsufficientPrivilege, match=_VIOLATES_POLICY)
    with acting_as(conn, "jobkeeper_api", tenants.a), rejected, conn.transaction():
        conn.execute(update, [tenants.b])
    assert count_for(conn, table, tenants.a) == 2


# --- the worker role ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", [None, "a"], ids=["no-tenant", "tenant-set"])
@pytest.mark.parametrize("table", [*TENANT_ROWS, "jobs_logged"])
def test_the_worker_role_sees_every_tenant(
    conn: psycopg.Connection[Any], tenants: Tenants, table: str, tenant: str | None
) -> None:
    with acting_as(conn, "jobkeeper_worker", tenants.a if tenant else None):
        seen = set(visible_tenants(conn, table))
    assert {tenants.a, tenants.b} <= seen


def test_the_worker_role_writes_for_any_tenant(conn: psycopg.Connection[Any], tenants: Tenants) -> None:
    with acting_as(conn, "jobkeeper_worker"):
        _insert(conn, "jobs", _rows(tenants.b)["jobs"])
        changed = conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing' WHERE tenant_id = ANY(%s)",
            [[tenants.a, tenants.b]],
        ).rowcount
        assert changed == 5
