"""The Python API: enqueue, enqueue_many, get_job and schedule, async (`Client`) and sync (`SyncClient`).

Both clients run the same SQL and the same validation (`jobkeeper.enqueue`); they differ only in how they
wait for the database. Every write takes `conn=`: pass your own connection and the enqueue becomes part of
your transaction (a rollback leaves no job). That connection's user must be the schema owner or a member
of the `jobkeeper_worker` role, since row-level security is forced on every table.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from jobkeeper.catalog import Catalog, catalog_from_rows, load_catalog
from jobkeeper.config import Settings
from jobkeeper.dead_letters import DeadLetters
from jobkeeper.dependencies import Links, apply, links, needs_settle
from jobkeeper.enqueue import InsertBatch, check_declaration, needs_refresh, parse_job_id, prepare
from jobkeeper.errors import (
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    JobFinishedError,
    UnknownTenantError,
)
from jobkeeper.store.pool import async_pool, sync_pool
from jobkeeper.store.queries import query
from jobkeeper.store.rows import job_from_row, job_type_from_row
from jobkeeper.types import Job, JobStatus, JobType, JsonValue

# One statement carries at most this many jobs; larger batches are split inside one transaction.
CHUNK = 5000
# Under load a client sends at most one wake-up NOTIFY per this many seconds (DESIGN §5: NOTIFY takes a
# global lock at commit). Workers busy draining do not need it; an idle worker polls within its interval.
NOTIFY_DEBOUNCE_SECONDS = 0.002


class _Debounce:
    def __init__(self) -> None:
        self._last = -1.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._last >= NOTIFY_DEBOUNCE_SECONDS:
            self._last = now
            return True
        return False


def _url(database_url: str | None, settings: Settings) -> str:
    url = database_url or settings.database_url
    if url is None:
        raise ConfigError(
            "DATABASE_URL is not set: pass a database URL to the client, or set DATABASE_URL "
            "(`jobkeeper up` prints the URL of its embedded database)"
        )
    return url


def _options(
    type: str,
    payload: JsonValue,
    queue: str | None,
    delay: float | timedelta | None,
    run_at: datetime | None,
    max_attempts: int | None,
    priority: int | None,
    idempotency_key: str | bool | None,
    tenant_id: uuid.UUID | str | None,
    depends_on: Iterable[uuid.UUID | str] | None,
) -> dict[str, Any]:
    return {
        "type": type,
        "payload": payload,
        "queue": queue,
        "delay": delay,
        "run_at": run_at,
        "max_attempts": max_attempts,
        "priority": priority,
        "idempotency_key": idempotency_key,
        "tenant_id": tenant_id,
        "depends_on": list(depends_on) if depends_on is not None else None,
    }


def _split(rows: list[dict[str, Any]]) -> tuple[list[Job | None], list[uuid.UUID]]:
    """Jobs created by the insert, and the ids of originals that duplicate keys resolved to."""
    jobs: list[Job | None] = []
    missing: list[uuid.UUID] = []
    for row in rows:
        if row["id"] is not None:
            jobs.append(job_from_row(row))
        else:
            jobs.append(None)
            missing.append(row["resolved_id"])
    return jobs, missing


def _merge(jobs: list[Job | None], rows: list[dict[str, Any]], originals: dict[uuid.UUID, Job]) -> list[Job]:
    merged: list[Job] = []
    for job, row in zip(jobs, rows, strict=True):
        if job is None:
            original = originals.get(row["resolved_id"])
            if original is None:
                raise DatabaseError(
                    f"idempotency key resolved to job {row['resolved_id']}, which no longer exists"
                )
            job = dataclasses.replace(original, deduplicated=True)
        merged.append(job)
    return merged


def _chunks(batch: InsertBatch) -> Iterable[InsertBatch]:
    if len(batch) <= CHUNK:
        yield batch
        return
    for start in range(0, len(batch), CHUNK):
        part = InsertBatch()
        for name in InsertBatch.__slots__:
            getattr(part, name).extend(getattr(batch, name)[start : start + CHUNK])
        yield part


def _settled(found: Links, result: list[dict[str, Any]], jobs: list[Job], size: int) -> list[Job]:
    return apply(found, result, jobs, many=size > 1) if found else jobs


def _declaration(name: str, queue: str | None, catalog: Catalog, settings: Settings) -> dict[str, Any]:
    checked = check_declaration(name, queue, catalog)
    return {"name": checked, "queue": queue, "default_queue": settings.default_queue}


def _translate(exc: psycopg.Error) -> Exception:
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailableError(f"database unavailable: {exc}")
    return DatabaseError(f"database error: {exc}")


class Client:
    """Async client. Use as `async with Client(url) as client:` or call `open()` and `close()`."""

    def __init__(self, database_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pool = async_pool(self.settings, _url(database_url, self.settings), name="jobkeeper-client")
        self._catalog: Catalog | None = None
        self.dead_letters = DeadLetters(self.pool)
        """List, show, replay and purge dead letters."""
        self._notify = _Debounce()

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue(
        self,
        type: str,
        payload: JsonValue = None,
        *,
        queue: str | None = None,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        priority: int | None = None,
        idempotency_key: str | bool | None = None,
        tenant_id: uuid.UUID | str | None = None,
        depends_on: Iterable[uuid.UUID | str] | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> Job:
        """Enqueue one job. A duplicate idempotency key returns the original job instead. With
        `depends_on` (ids of jobs of the same tenant, at most 100) the job is `waiting` until they have all
        completed, and is cancelled if one of them fails or is cancelled."""
        options = _options(
            type,
            payload,
            queue,
            delay,
            run_at,
            max_attempts,
            priority,
            idempotency_key,
            tenant_id,
            depends_on,
        )
        (job,) = await self.enqueue_many([options], conn=conn)
        return job

    async def schedule(
        self, type: str, payload: JsonValue, at: datetime | timedelta | float, **options: Any
    ) -> Job:
        """Enqueue a job to run at `at` (a datetime) or after it (seconds or a timedelta)."""
        if isinstance(at, datetime):
            return await self.enqueue(type, payload, run_at=at, **options)
        return await self.enqueue(type, payload, delay=at, **options)

    async def enqueue_many(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
        now: datetime | None = None,
        validate: bool = True,
    ) -> list[Job]:
        """Enqueue many jobs in one statement (per 5,000), all or none. Returns them in order.

        A job's `depends_on` may also name an earlier job of the same call by its index (an int). Each
        job's type must be known and its payload valid for its type (`InvalidJobError` otherwise);
        `validate=False` skips both, for a caller that has just checked them itself."""
        items = list(jobs)
        if not items:
            return []
        catalog = await self._fresh_catalog(items, validate)
        batch = prepare(items, catalog, self.settings, validate=validate)
        linked = any(batch.depends_on)
        try:
            if conn is not None:
                if linked:  # a savepoint inside the caller's transaction: a refused parent undoes the insert
                    async with conn.transaction():
                        return await self._insert(conn, batch, own_transaction=False, now=now)
                return await self._insert(conn, batch, own_transaction=False, now=now)
            async with self.pool.connection() as own:
                if len(batch) <= CHUNK and not linked:
                    return await self._insert(own, batch, own_transaction=True, now=now)
                async with own.transaction():
                    return await self._insert(own, batch, own_transaction=True, now=now)
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise await self._fk_error(batch, exc) from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def get_job(self, job_id: uuid.UUID | str) -> Job | None:
        ident = parse_job_id(job_id)
        try:
            async with self.pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(query("get_jobs"), {"ids": [ident]})
                row = await cur.fetchone()
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return job_from_row(row) if row else None

    async def cancel(
        self, job_id: uuid.UUID | str, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Job | None:
        """Cancel a job: a pending one at once; a running one is asked to stop (its worker cancels it
        within a second and it ends `cancelled`). Returns the job as updated, or None when there is no such
        job; cancelling a cancelled job again returns it unchanged. Raises `JobFinishedError` when it
        completed or failed already (as the API answers 409 and `jobkeeper jobs cancel` exits 1)."""
        ident = parse_job_id(job_id)
        try:
            if conn is not None:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(query("cancel_job"), {"id": ident})
                row = await cur.fetchone()
                if row is not None and needs_settle([row]):
                    await cur.execute(query("settle_dependents"), {"ids": [ident]})
            else:
                async with self.pool.connection() as own:
                    cur = own.cursor(row_factory=dict_row)
                    await cur.execute(query("cancel_job"), {"id": ident})
                    row = await cur.fetchone()
                    if row is not None and needs_settle([row]):
                        await cur.execute(query("settle_dependents"), {"ids": [ident]})
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return _cancelled(row)

    async def declare_type(self, name: str, *, queue: str | None = None) -> JobType:
        """Make job type `name` known, so that its jobs can be enqueued before a worker handling it has
        started (unknown types are refused). A new type goes to `queue` (a shared queue; default: the
        default queue); declaring a known type again with `queue` changes its default queue."""
        catalog = await self.catalog(refresh=True)
        params = _declaration(name, queue, catalog, self.settings)
        try:
            async with self.pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(query("declare_job_type"), params)
                row = await cur.fetchone()
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        assert row is not None
        self._catalog = None
        return job_type_from_row(row)

    async def catalog(self, *, refresh: bool = False) -> Catalog:
        if refresh or self._catalog is None or self._catalog.is_stale():
            async with self.pool.connection() as conn:
                self._catalog = await load_catalog(conn)
        return self._catalog

    async def _fresh_catalog(self, items: list[Mapping[str, Any]], validate: bool) -> Catalog:
        catalog = await self.catalog()
        if needs_refresh(items, catalog, types=validate and not self.settings.allow_unknown_types):
            catalog = await self.catalog(refresh=True)
        return catalog

    async def _insert(
        self,
        conn: psycopg.AsyncConnection[Any],
        batch: InsertBatch,
        *,
        own_transaction: bool,
        now: datetime | None,
    ) -> list[Job]:
        cur = conn.cursor(row_factory=dict_row)
        rows: list[dict[str, Any]] = []
        for part in _chunks(batch):
            notify = self._notify() or not own_transaction
            await cur.execute(
                query("insert_jobs"), part.params(own_transaction=own_transaction, now=now, notify=notify)
            )
            rows.extend(await cur.fetchall())
        found = links(batch, rows)
        result: list[dict[str, Any]] = []
        if found:
            await cur.execute(query("add_dependencies"), found.params())
            result = await cur.fetchall()
        jobs, missing = _split(rows)
        originals: dict[uuid.UUID, Job] = {}
        if missing:
            await cur.execute(query("get_jobs"), {"ids": missing})
            originals = {row["id"]: job_from_row(row) for row in await cur.fetchall()}
        return _settled(found, result, _merge(jobs, rows, originals), len(batch))

    async def _fk_error(self, batch: InsertBatch, exc: psycopg.Error) -> Exception:
        if "tenant" not in str(exc):
            return _translate(exc)
        async with self.pool.connection() as conn:
            cur = await conn.execute(query("missing_tenants"), {"tenant_ids": batch.tenant_ids})
            missing = [row[0] for row in await cur.fetchall()]
        return UnknownTenantError(missing[0]) if missing else _translate(exc)


class SyncClient:
    """Blocking client with the same API as `Client`, for scripts and synchronous web apps."""

    def __init__(self, database_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pool = sync_pool(self.settings, _url(database_url, self.settings), name="jobkeeper-sync-client")
        self.pool.open(wait=False)
        self._catalog: Catalog | None = None
        self._notify = _Debounce()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(
        self,
        type: str,
        payload: JsonValue = None,
        *,
        queue: str | None = None,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        priority: int | None = None,
        idempotency_key: str | bool | None = None,
        tenant_id: uuid.UUID | str | None = None,
        depends_on: Iterable[uuid.UUID | str] | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> Job:
        options = _options(
            type,
            payload,
            queue,
            delay,
            run_at,
            max_attempts,
            priority,
            idempotency_key,
            tenant_id,
            depends_on,
        )
        (job,) = self.enqueue_many([options], conn=conn)
        return job

    def schedule(
        self, type: str, payload: JsonValue, at: datetime | timedelta | float, **options: Any
    ) -> Job:
        if isinstance(at, datetime):
            return self.enqueue(type, payload, run_at=at, **options)
        return self.enqueue(type, payload, delay=at, **options)

    def enqueue_many(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.Connection[Any] | None = None,
        now: datetime | None = None,
        validate: bool = True,
    ) -> list[Job]:
        """Enqueue many jobs; see `Client.enqueue_many`."""
        items = list(jobs)
        if not items:
            return []
        catalog = self.catalog()
        if needs_refresh(items, catalog, types=validate and not self.settings.allow_unknown_types):
            catalog = self.catalog(refresh=True)
        batch = prepare(items, catalog, self.settings, validate=validate)
        linked = any(batch.depends_on)
        try:
            if conn is not None:
                if linked:  # a savepoint inside the caller's transaction: a refused parent undoes the insert
                    with conn.transaction():
                        return self._insert(conn, batch, own_transaction=False, now=now)
                return self._insert(conn, batch, own_transaction=False, now=now)
            with self.pool.connection() as own:
                if len(batch) <= CHUNK and not linked:
                    return self._insert(own, batch, own_transaction=True, now=now)
                with own.transaction():
                    return self._insert(own, batch, own_transaction=True, now=now)
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise self._fk_error(batch, exc) from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    def get_job(self, job_id: uuid.UUID | str) -> Job | None:
        ident = parse_job_id(job_id)
        try:
            with self.pool.connection() as conn:
                row = (
                    conn.cursor(row_factory=dict_row).execute(query("get_jobs"), {"ids": [ident]}).fetchone()
                )
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return job_from_row(row) if row else None

    def cancel(self, job_id: uuid.UUID | str, *, conn: psycopg.Connection[Any] | None = None) -> Job | None:
        """Cancel a job; see `Client.cancel` (raises `JobFinishedError` for a completed or failed job)."""
        ident = parse_job_id(job_id)
        try:
            if conn is not None:
                cur = conn.cursor(row_factory=dict_row)
                row = cur.execute(query("cancel_job"), {"id": ident}).fetchone()
                if row is not None and needs_settle([row]):
                    cur.execute(query("settle_dependents"), {"ids": [ident]})
            else:
                with self.pool.connection() as own:
                    cur = own.cursor(row_factory=dict_row)
                    row = cur.execute(query("cancel_job"), {"id": ident}).fetchone()
                    if row is not None and needs_settle([row]):
                        cur.execute(query("settle_dependents"), {"ids": [ident]})
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return _cancelled(row)

    def declare_type(self, name: str, *, queue: str | None = None) -> JobType:
        """Make job type `name` known; see `Client.declare_type`."""
        params = _declaration(name, queue, self.catalog(refresh=True), self.settings)
        try:
            with self.pool.connection() as conn:
                row = conn.cursor(row_factory=dict_row).execute(query("declare_job_type"), params).fetchone()
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(f"no database connection within {self.pool.timeout} s") from exc
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        assert row is not None
        self._catalog = None
        return job_type_from_row(row)

    def catalog(self, *, refresh: bool = False) -> Catalog:
        if refresh or self._catalog is None or self._catalog.is_stale():
            with self.pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                queue_rows = cur.execute(query("load_queues")).fetchall()
                type_rows = cur.execute(query("load_job_types")).fetchall()
            self._catalog = catalog_from_rows(queue_rows, type_rows)
        return self._catalog

    def _insert(
        self,
        conn: psycopg.Connection[Any],
        batch: InsertBatch,
        *,
        own_transaction: bool,
        now: datetime | None,
    ) -> list[Job]:
        cur = conn.cursor(row_factory=dict_row)
        rows: list[dict[str, Any]] = []
        for part in _chunks(batch):
            notify = self._notify() or not own_transaction
            params = part.params(own_transaction=own_transaction, now=now, notify=notify)
            rows.extend(cur.execute(query("insert_jobs"), params).fetchall())
        found = links(batch, rows)
        result: list[dict[str, Any]] = []
        if found:
            result = cur.execute(query("add_dependencies"), found.params()).fetchall()
        jobs, missing = _split(rows)
        originals: dict[uuid.UUID, Job] = {}
        if missing:
            originals = {
                row["id"]: job_from_row(row) for row in cur.execute(query("get_jobs"), {"ids": missing})
            }
        return _settled(found, result, _merge(jobs, rows, originals), len(batch))

    def _fk_error(self, batch: InsertBatch, exc: psycopg.Error) -> Exception:
        if "tenant" not in str(exc):
            return _translate(exc)
        with self.pool.connection() as conn:
            missing = [
                row[0] for row in conn.execute(query("missing_tenants"), {"tenant_ids": batch.tenant_ids})
            ]
        return UnknownTenantError(missing[0]) if missing else _translate(exc)


def _cancelled(row: dict[str, Any] | None) -> Job | None:
    job = job_from_row(row) if row else None
    if job is not None and job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
        raise JobFinishedError(job)
    return job
