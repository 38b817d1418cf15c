"""How the store's operations run: an operation is a generator of statements, and one driver, async or
sync, runs it on a connection.

An operation yields a `Statement`, receives its rows (or its row count), and returns its typed result;
it yields an `Atomic` to run some of its steps in one transaction (a savepoint inside the caller's). So each
operation is written once for async callers (the API, the worker) and sync ones (the CLI, the heartbeat
thread, SyncClient), as psycopg's own protocol is (psycopg/generators.py, driven by waiting.py).

The drivers are the only place psycopg errors are caught: `run` and `run_sync` translate them once
(`jobkeeper.store.errors.translate`), and `AsyncDb`/`SyncDb` do so for the pool's own errors (no
connection in time, a failed commit). The cost is one generator step per statement, negligible beside an
execute (docs/benchmarks.md#store-drivers).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, LiteralString, NamedTuple, TypeAlias, TypeVar

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jobkeeper.config import Settings
from jobkeeper.store.errors import translate
from jobkeeper.store.queries import info

T = TypeVar("T")

AsyncConnection: TypeAlias = psycopg.AsyncConnection[Any]
"""A connection as parts outside the store hold it, to hand to `run`."""

SyncConnection: TypeAlias = psycopg.Connection[Any]
"""A sync connection as parts outside the store hold it, to hand to `run_sync`."""

Rows = Literal["dict", "tuple", "count"]
Isolation = Literal["read committed", "repeatable read", "serializable"]

_ISOLATION: dict[Isolation, LiteralString] = {
    "read committed": "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "repeatable read": "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "serializable": "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
}


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement to execute. `rows` says what the operation gets back: dicts, tuples (the hot paths
    that read columns by position), or "count", the number of rows it touched (prunes). A statement that
    returns no rows gives an empty list."""

    sql: LiteralString
    params: Mapping[str, Any] | None = None
    rows: Rows = "dict"
    prepare: bool | None = None
    binary: bool | None = None


def named(
    name: str, params: Mapping[str, Any] | None = None, *, rows: Rows = "dict", binary: bool | None = None
) -> Statement:
    """The statement of the named query `name`, unprepared when its header says `plan: per call`."""
    query = info(name)
    return Statement(query.text, params, rows, False if query.per_call else None, binary)


def first_row(name: str, params: Mapping[str, Any] | None = None) -> Steps[dict[str, Any] | None]:
    """The operation of one named query that returns its first row, if any."""
    rows = yield named(name, params)
    return rows[0] if rows else None


@dataclass(frozen=True, slots=True)
class Atomic(Generic[T]):
    """Steps run in one transaction: its own on an idle connection, a savepoint inside a transaction.
    `isolation` applies only to a transaction of its own (the server refuses it once a statement ran)."""

    steps: Steps[T]
    isolation: Isolation | None = None


Steps: TypeAlias = Generator[Statement | Atomic[Any], Any, T]


async def run(conn: psycopg.AsyncConnection[Any], steps: Steps[T]) -> T:
    """Run an operation on `conn`; a psycopg error comes out as jobkeeper's."""
    try:
        return await _drive(conn, steps)
    except psycopg.Error as exc:
        raise translate(exc) from exc
    finally:
        steps.close()


class _Done(NamedTuple):
    """An operation's return value, once its generator stopped."""

    value: Any


def _advance(steps: Steps[Any], result: Any) -> Statement | Atomic[Any] | _Done:
    """Send `result` (the last step's) into the operation: its next step, or _Done when it returned."""
    try:
        return steps.send(result)
    except StopIteration as stop:
        return _Done(stop.value)


async def _drive(conn: psycopg.AsyncConnection[Any], steps: Steps[T]) -> T:
    result: Any = None
    while not isinstance(step := _advance(steps, result), _Done):
        if isinstance(step, Statement):
            factory = dict_row if step.rows == "dict" else tuple_row
            cur: psycopg.AsyncCursor[Any] = conn.cursor(row_factory=factory)
            await cur.execute(step.sql, step.params, prepare=step.prepare, binary=step.binary)
            if step.rows == "count":
                result = cur.rowcount
            else:
                # rownumber, not description: description builds a Column per column on every access.
                result = await cur.fetchall() if cur.rownumber is not None else []
        else:
            async with conn.transaction():
                if step.isolation is not None:
                    await conn.execute(_ISOLATION[step.isolation])
                result = await _drive(conn, step.steps)
    done: T = step.value
    return done


def run_sync(conn: psycopg.Connection[Any], steps: Steps[T]) -> T:
    """`run` for a sync connection."""
    try:
        return _drive_sync(conn, steps)
    except psycopg.Error as exc:
        raise translate(exc) from exc
    finally:
        steps.close()


def _drive_sync(conn: psycopg.Connection[Any], steps: Steps[T]) -> T:
    result: Any = None
    while not isinstance(step := _advance(steps, result), _Done):
        if isinstance(step, Statement):
            factory = dict_row if step.rows == "dict" else tuple_row
            cur: psycopg.Cursor[Any] = conn.cursor(row_factory=factory)
            cur.execute(step.sql, step.params, prepare=step.prepare, binary=step.binary)
            if step.rows == "count":
                result = cur.rowcount
            else:
                result = cur.fetchall() if cur.rownumber is not None else []
        else:
            with conn.transaction():
                if step.isolation is not None:
                    conn.execute(_ISOLATION[step.isolation])
                result = _drive_sync(conn, step.steps)
    done: T = step.value
    return done


class AsyncDb:
    """Operations over a pool: `run` takes a connection for one operation, or uses the caller's `conn` to
    join its transaction. The connection's transaction commits when the operation returns."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, timeout: float | None = None) -> None:
        self.pool = pool
        self.timeout = timeout

    async def open(self, timeout: float) -> None:
        """Open the pool, waiting up to `timeout` seconds for its connections (an unreachable database
        raises `DatabaseUnavailableError`)."""
        try:
            await self.pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:  # PoolTimeout
            raise translate(exc) from exc

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the pool for several operations in a row; a psycopg error raised in the block
        (by the pool, or by a call not yet run through the store) comes out as jobkeeper's."""
        try:
            async with self.pool.connection(timeout=self.timeout) as conn:
                yield conn
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def run(self, steps: Steps[T], conn: psycopg.AsyncConnection[Any] | None = None) -> T:
        if conn is not None:
            return await run(conn, steps)
        try:
            async with self.pool.connection(timeout=self.timeout) as pooled:
                return await run(pooled, steps)
        except psycopg.Error as exc:  # PoolTimeout, or the commit at the block's end
            raise translate(exc) from exc


def connect(url: str, settings: Settings) -> SyncConnection:
    """One autocommit connection with dict rows and the settings' options (timeouts, TLS), for one-shot
    commands; an unreachable server raises `DatabaseUnavailableError` with libpq's own words."""
    try:
        return psycopg.connect(url, autocommit=True, row_factory=dict_row, **settings.connection_kwargs())
    except psycopg.Error as exc:
        raise translate(exc) from exc


class SyncDb:
    """`AsyncDb` over a sync pool."""

    def __init__(self, pool: ConnectionPool[Any], *, timeout: float | None = None) -> None:
        self.pool = pool
        self.timeout = timeout

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool inside one transaction, for several operations that commit together
        at the block's end; a psycopg error (the pool's, the commit's) comes out as jobkeeper's."""
        try:
            with self.pool.connection(timeout=self.timeout) as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise translate(exc) from exc

    def run(self, steps: Steps[T], conn: psycopg.Connection[Any] | None = None) -> T:
        if conn is not None:
            return run_sync(conn, steps)
        try:
            with self.pool.connection(timeout=self.timeout) as pooled:
                return run_sync(pooled, steps)
        except psycopg.Error as exc:  # PoolTimeout, or the commit at the block's end
            raise translate(exc) from exc
