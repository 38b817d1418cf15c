"""The translation of psycopg errors (jobkeeper/store/errors.py): by SQLSTATE and constraint name."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper.errors import ConflictError, InvalidValueError, UnknownReferenceError
from jobkeeper.store.errors import CONSTRAINT_FIELDS
from jobkeeper.store.run import Statement, Steps, run_sync
from jobkeeper.types import DEV_TENANT_ID


def test_every_constraint_of_the_schema_names_its_field(conn: psycopg.Connection[Any]) -> None:
    """A migration that adds a unique, foreign-key or check constraint must say, in CONSTRAINT_FIELDS,
    which field a violation is about; a dropped one must leave the map."""
    rows = conn.execute(
        "SELECT DISTINCT conname FROM pg_constraint"
        " WHERE connamespace = 'jobkeeper'::regnamespace AND contype IN ('u', 'f', 'c')"
    ).fetchall()
    in_schema = {name for (name,) in rows}
    assert sorted(in_schema - CONSTRAINT_FIELDS.keys()) == [], "constraints the map does not name"
    assert sorted(CONSTRAINT_FIELDS.keys() - in_schema) == [], "names in the map the schema lacks"


def _insert_schedule(tenant_id: uuid.UUID, name: str) -> Steps[None]:
    yield Statement(
        "INSERT INTO jobkeeper.schedules (tenant_id, name, cron, queue, job_type)"
        " VALUES (%(tenant_id)s, %(name)s, '* * * * *', 'background', 'cleanup')",
        {"tenant_id": tenant_id, "name": name},
    )


def test_a_unique_violation_is_a_conflict_on_its_field(conn: psycopg.Connection[Any]) -> None:
    run_sync(conn, _insert_schedule(DEV_TENANT_ID, "nightly"))
    with pytest.raises(ConflictError) as raised:
        run_sync(conn, _insert_schedule(DEV_TENANT_ID, "nightly"))
    assert raised.value.field == "name"
    assert isinstance(raised.value.__cause__, psycopg.errors.UniqueViolation)


def test_a_foreign_key_violation_is_an_unknown_reference(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(UnknownReferenceError) as raised:
        run_sync(conn, _insert_schedule(uuid.uuid4(), "nightly"))
    assert raised.value.field == "tenant_id"


def _set_priority(priority: int) -> Steps[None]:
    yield Statement(
        "UPDATE jobkeeper.schedules SET priority = %(priority)s WHERE name = 'nightly'",
        {"priority": priority},
    )


def test_a_check_violation_is_an_invalid_value_of_its_column(conn: psycopg.Connection[Any]) -> None:
    run_sync(conn, _insert_schedule(DEV_TENANT_ID, "nightly"))
    with pytest.raises(InvalidValueError) as raised:
        run_sync(conn, _set_priority(11))
    assert (raised.value.column, raised.value.field) == ("priority", "priority")


def test_a_value_out_of_its_types_range_has_no_column(conn: psycopg.Connection[Any]) -> None:
    run_sync(conn, _insert_schedule(DEV_TENANT_ID, "nightly"))
    with pytest.raises(InvalidValueError) as raised:
        run_sync(conn, _set_priority(70000))  # smallint
    assert raised.value.column is None
    assert str(raised.value).startswith("invalid value: ")
