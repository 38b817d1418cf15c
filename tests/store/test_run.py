"""The drivers of store operations (jobkeeper/store/run.py) against the real database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jobkeeper.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    InvalidValueError,
    MigrationError,
    StatementTimeoutError,
)
from jobkeeper.store.run import AsyncDb, Atomic, Statement, Steps, SyncDb, first_row, named, run, run_sync


def _values() -> Steps[dict[str, Any]]:
    rows = yield Statement("SELECT %(a)s::int AS a, 'x' AS b", {"a": 1})
    tuples = yield Statement("SELECT 2, 'y'", rows="tuple")
    empty = yield Statement("SET LOCAL work_mem = '8MB'")
    return {"dicts": rows, "tuples": tuples, "empty": empty}


async def test_run_sends_each_statement_and_returns_the_operations_result(
    aconn: psycopg.AsyncConnection[Any],
) -> None:
    assert await run(aconn, _values()) == {"dicts": [{"a": 1, "b": "x"}], "tuples": [(2, "y")], "empty": []}


def test_run_sync_runs_the_same_operation(conn: psycopg.Connection[Any]) -> None:
    assert run_sync(conn, _values()) == {"dicts": [{"a": 1, "b": "x"}], "tuples": [(2, "y")], "empty": []}


def _count() -> Steps[int]:
    yield Statement("CREATE TEMP TABLE t (n int) ON COMMIT DROP")
    inserted: int = yield Statement("INSERT INTO t SELECT generate_series(1, 3)", rows="count")
    return inserted


def test_count_rows_give_the_rows_touched(conn: psycopg.Connection[Any]) -> None:
    assert run_sync(conn, _count()) == 3


def test_named_statements_carry_the_headers_plan(conn: psycopg.Connection[Any]) -> None:
    assert named("list_jobs").prepare is False
    assert named("claim_jobs", binary=True).prepare is None
    assert run_sync(conn, first_row("database_now")) is not None


def _insert(value: int) -> Steps[None]:
    yield Statement("INSERT INTO t VALUES (%(n)s)", {"n": value})


def _fail() -> Steps[None]:
    yield Statement("INSERT INTO t VALUES (1)")
    yield Statement("SELECT 1 / 0")


def _atomic_then_read() -> Steps[None]:
    yield Statement("CREATE TEMP TABLE t (n int)")
    yield Atomic(_insert(1))
    yield Atomic(_fail())


def test_an_atomic_that_fails_rolls_back_only_its_own_statements(conn: psycopg.Connection[Any]) -> None:
    """Inside the caller's transaction an Atomic is a savepoint: a failure undoes its statements, the
    caller's stay, and the error comes out translated."""
    with pytest.raises(InvalidValueError) as raised:
        run_sync(conn, _atomic_then_read())
    assert isinstance(raised.value.__cause__, psycopg.errors.DivisionByZero)
    assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]


def _isolation() -> Steps[str]:
    rows = yield Statement("SHOW transaction_isolation", rows="tuple")
    return str(rows[0][0])


def _in(atomic: Atomic[str]) -> Steps[str]:
    result: str = yield atomic
    return result


async def test_an_atomic_of_its_own_runs_with_its_isolation(db_url: str) -> None:
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    try:
        assert await run(conn, _isolation()) == "read committed"
        assert await run(conn, _in(Atomic(_isolation(), isolation="repeatable read"))) == "repeatable read"
    finally:
        await conn.close()


def _statement(sql: str) -> Steps[list[Any]]:
    rows: list[Any] = yield Statement(sql)
    return rows


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM jobkeeper.no_such_table", MigrationError),
        ("SELECT * FROM no_such_schema.jobs", MigrationError),
        ("SELECT 'x'::int", InvalidValueError),
        ("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)", StatementTimeoutError),
        ("SELECT no_such_function()", DatabaseError),
    ],
)
def test_psycopg_errors_are_translated_once_with_their_cause(
    conn: psycopg.Connection[Any], sql: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        run_sync(conn, _statement(sql))
    assert type(raised.value) is error
    assert isinstance(raised.value.__cause__, psycopg.Error)


async def test_async_db_takes_a_connection_or_joins_the_callers(db_url: str) -> None:
    async with AsyncConnectionPool(db_url, min_size=1, max_size=1, open=False) as pool:
        db = AsyncDb(pool, timeout=1)
        assert await db.run(first_row("database_now")) is not None
        async with pool.connection() as held:
            # The one connection is held: the caller's is used, and a second one cannot be had.
            assert await db.run(first_row("database_now"), conn=held) is not None
            with pytest.raises(DatabaseUnavailableError):
                await AsyncDb(pool, timeout=0.05).run(first_row("database_now"))


def test_sync_db_takes_a_connection_and_translates_the_pools_timeout(db_url: str) -> None:
    with ConnectionPool(db_url, min_size=1, max_size=1, open=False) as pool:
        db = SyncDb(pool, timeout=1)
        assert db.run(first_row("database_now")) is not None
        with pool.connection() as held:
            assert db.run(first_row("database_now"), conn=held) is not None
            with pytest.raises(DatabaseUnavailableError) as raised:
                SyncDb(pool, timeout=0.05).run(first_row("database_now"))
        assert type(raised.value) is DatabaseUnavailableError
