"""Schedule operations (jobkeeper/store/schedules.py) against the real database, in a rolled-back
transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobkeeper.errors import ConflictError, InvalidJobError
from jobkeeper.store import schedules, server
from jobkeeper.store.run import run_sync
from jobkeeper.types import DEV_TENANT_ID, Schedule

LATER = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
def conn(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The rolled-back connection with its transaction begun, so that an operation's own transaction is a
    savepoint in it (on an idle connection it would commit)."""
    conn.execute("SELECT 1")
    return conn


def _values(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "tenant_id": DEV_TENANT_ID,
        "name": name,
        "cron": "0 3 * * *",
        "timezone": "UTC",
        "queue": "background",
        "job_type": "generate-report",
        "payload": "{}",
        "priority": None,
        "active": True,
        "missed_policy": "skip",
        "catch_up_window_seconds": 3600.0,
        "overlap_policy": "allow",
        "next_run_at": LATER,
    } | overrides


def _create(conn: psycopg.Connection[Any], name: str, **overrides: Any) -> Schedule:
    created = run_sync(conn, schedules.create(_values(name, **overrides), max_schedules=100))
    assert created is not None
    return created


def test_create_counts_the_tenants_schedules_and_refuses_a_name_twice(conn: psycopg.Connection[Any]) -> None:
    first = _create(conn, "store-one")
    assert (first.name, first.active, first.next_run_at) == ("store-one", True, LATER)
    count = conn.execute("SELECT count(*) FROM jobkeeper.schedules WHERE tenant_id = %s", (DEV_TENANT_ID,))
    (existing,) = count.fetchone() or (0,)
    assert run_sync(conn, schedules.create(_values("store-two"), max_schedules=existing)) is None
    with pytest.raises(ConflictError) as raised:
        run_sync(conn, schedules.create(_values("store-one"), max_schedules=100))
    assert raised.value.field == "name"
    # The failed create was a savepoint: the caller's transaction goes on.
    assert run_sync(conn, schedules.get(first.id)) == first


def test_list_get_and_find_by_id_or_name(conn: psycopg.Connection[Any]) -> None:
    a = _create(conn, "store-a")
    b = _create(conn, "store-b", active=False, next_run_at=None)
    listed = run_sync(conn, schedules.list(tenant_id=DEV_TENANT_ID, limit=100))
    assert [s.id for s in listed if s.name.startswith("store-")] == [a.id, b.id]
    assert run_sync(conn, schedules.list(tenant_id=DEV_TENANT_ID, active=False, limit=100)) == [b]
    assert run_sync(conn, schedules.list(tenant_id=DEV_TENANT_ID, after=(a.name, a.id), limit=1)) == [b]
    assert run_sync(conn, schedules.get(a.id)) == a
    assert run_sync(conn, schedules.find(DEV_TENANT_ID, str(b.id))) == b
    assert run_sync(conn, schedules.find(DEV_TENANT_ID, "store-b")) == b
    assert run_sync(conn, schedules.find(uuid.uuid4(), "store-b")) is None
    assert run_sync(conn, schedules.get(uuid.uuid4())) is None


def test_set_active_pauses_without_a_next_run_and_resumes_from_the_next_slot(
    conn: psycopg.Connection[Any],
) -> None:
    """The one meaning of pause and resume, the API's, which the dashboard and the CLI share."""
    created = _create(conn, "store-pause", cron="*/5 * * * *")
    paused = run_sync(conn, schedules.set_active(created.id, False))
    assert paused is not None
    assert (paused.active, paused.next_run_at) == (False, None)
    resumed = run_sync(conn, schedules.set_active(created.id, True))
    assert resumed is not None
    assert resumed.next_run_at is not None
    now = run_sync(conn, server.database_now())
    assert resumed.active
    assert now < resumed.next_run_at <= now + timedelta(minutes=5)
    assert resumed.next_run_at.minute % 5 == 0
    # Resuming an active schedule keeps its next run.
    again = run_sync(conn, schedules.set_active(created.id, True))
    assert again is not None
    assert again.next_run_at == resumed.next_run_at
    assert run_sync(conn, schedules.set_active(uuid.uuid4(), True)) is None


def test_set_active_checks_the_locked_schedule_and_refuses_a_cron_that_cannot_run(
    conn: psycopg.Connection[Any],
) -> None:
    created = _create(conn, "store-check", active=False, next_run_at=None)
    seen: list[Schedule] = []
    run_sync(conn, schedules.set_active(created.id, False, check=seen.append))
    assert [s.id for s in seen] == [created.id]

    def refuse(_: Schedule) -> None:
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        run_sync(conn, schedules.set_active(created.id, True, check=refuse))
    conn.execute("UPDATE jobkeeper.schedules SET cron = '0 0 31 2 *' WHERE id = %s", (created.id,))
    with pytest.raises(InvalidJobError) as raised:
        run_sync(conn, schedules.set_active(created.id, True))
    assert raised.value.field == "cron"


def test_update_delete_and_record_run(conn: psycopg.Connection[Any]) -> None:
    created = _create(conn, "store-update")
    locked = run_sync(conn, schedules.lock(created.id))
    assert locked == created
    updated = run_sync(conn, schedules.update(created.id, _values("store-renamed", priority=3)))
    assert updated is not None
    assert (updated.name, updated.priority) == ("store-renamed", 3)
    job_id = uuid.uuid4()  # jobs are partitioned: no foreign key to them
    assert run_sync(conn, schedules.record_run(created.id, job_id))
    ran = run_sync(conn, schedules.get(created.id))
    assert ran is not None
    assert ran.last_job_id == job_id
    assert ran.last_run_at is not None
    assert run_sync(conn, schedules.delete(created.id, tenant_id=uuid.uuid4())) is False
    assert run_sync(conn, schedules.delete(created.id, tenant_id=DEV_TENANT_ID)) is True
    assert run_sync(conn, schedules.delete(created.id)) is False


def test_the_ticks_reads_and_writes(conn: psycopg.Connection[Any]) -> None:
    due_at = datetime(2000, 1, 1, tzinfo=UTC)
    created = _create(conn, "store-due", next_run_at=due_at)
    rows = run_sync(conn, schedules.due(now=None, limit=1000, bucket_key="store:none"))
    row = next(r for r in rows if r["id"] == created.id)
    assert row["last_job_status"] is None
    locked = run_sync(conn, schedules.lock_due([created.id], [row["updated_at"]]))
    assert locked == {created.id}
    run_sync(
        conn,
        schedules.advance(
            {
                "ids": [created.id],
                "next_run_ats": [LATER],
                "last_run_ats": [due_at],
                "last_job_ids": [None],
                "missed": [2],
                "keep_active": [True],
            }
        ),
    )
    advanced = run_sync(conn, schedules.get(created.id))
    assert advanced is not None
    assert (advanced.next_run_at, advanced.last_run_at, advanced.missed_runs) == (LATER, due_at, 2)
