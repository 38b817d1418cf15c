"""The Python API: enqueue, enqueue_many, get_job, cancel and schedule, async (`Client`) and sync
(`SyncClient`).

Both clients are one body: `_Core` holds what does no I/O (settings, the catalog cache, the NOTIFY
debounce, validation into column arrays) and hands out the store's operations (`jobkeeper.store`), which
each client runs with its own driver (`AsyncDb.run` or `SyncDb.run`). Every write takes `conn=`: pass your
own connection and the enqueue becomes part of your transaction (a rollback leaves no job). That
connection's user must be the schema owner or a member of the `jobkeeper_worker` role, since row-level
security is forced on every table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, TypedDict

from typing_extensions import Unpack

from jobkeeper.catalog import Catalog, catalog_from_rows
from jobkeeper.config import Settings
from jobkeeper.dead_letters import DeadLetters
from jobkeeper.enqueue import InsertBatch, check_declaration, needs_refresh, parse_job_id, prepare
from jobkeeper.errors import ConfigError, UnknownReferenceError, UnknownTenantError
from jobkeeper.store import jobs, tenants
from jobkeeper.store.jobs import CHUNK
from jobkeeper.store.pool import async_pool, sync_pool
from jobkeeper.store.rows import job_type_from_row
from jobkeeper.store.run import AsyncDb, Steps, SyncDb, named
from jobkeeper.types import Job, JobType, JsonValue

if TYPE_CHECKING:
    import psycopg

__all__ = ["CHUNK", "Client", "JobOptions", "SyncClient"]

# Under load a client sends at most one wake-up NOTIFY per this many seconds (DESIGN §5: NOTIFY takes a
# global lock at commit). Workers busy draining do not need it; an idle worker polls within its interval.
NOTIFY_DEBOUNCE_SECONDS = 0.002


class JobOptions(TypedDict, total=False):
    """The options of one job besides its type and payload (`Client.enqueue`)."""

    queue: str | None
    delay: float | timedelta | None
    run_at: datetime | None
    max_attempts: int | None
    priority: int | None
    idempotency_key: str | bool | None
    tenant_id: uuid.UUID | str | None
    depends_on: Iterable[uuid.UUID | str] | None


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


def _item(type: str, payload: JsonValue, options: JobOptions) -> dict[str, Any]:
    item: dict[str, Any] = {"type": type, "payload": payload, **options}
    depends_on = item.get("depends_on")
    if depends_on is not None:
        item["depends_on"] = list(depends_on)
    return item


def _load_catalog() -> Steps[Catalog]:
    # The catalog's queries belong to the queues' store module (issue 16, WP3): `queues.load_catalog`.
    queue_rows = yield named("load_queues")
    type_rows = yield named("load_job_types")
    return catalog_from_rows(queue_rows, type_rows)


def _declare(params: dict[str, Any]) -> Steps[JobType]:
    # As `_load_catalog`: WP3's queues module takes this query over.
    rows = yield named("declare_job_type", params)
    return job_type_from_row(rows[0])


class _Core:
    """Everything both clients share and that does no I/O: they differ only in how they run the steps."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog: Catalog | None = None
        self.notify = _Debounce()

    def cached(self, refresh: bool) -> Catalog | None:
        """The cached catalog, or None when it must be (re)loaded with `load_catalog`."""
        if refresh or self.catalog is None or self.catalog.is_stale():
            return None
        return self.catalog

    def load_catalog(self) -> Steps[Catalog]:
        self.catalog = yield from _load_catalog()
        return self.catalog

    def stale_for(self, items: list[Mapping[str, Any]], catalog: Catalog, validate: bool) -> bool:
        """True when `items` name a queue (or, validating, a type) the catalog may have learnt since."""
        return needs_refresh(items, catalog, types=validate and not self.settings.allow_unknown_types)

    def insert(
        self,
        items: list[Mapping[str, Any]],
        catalog: Catalog,
        *,
        own: bool,
        now: datetime | None,
        validate: bool,
    ) -> tuple[InsertBatch, Steps[list[Job]]]:
        """The batch of `items` (validated before any I/O) and the operation that inserts it."""
        batch = prepare(items, catalog, self.settings, validate=validate)
        return batch, jobs.insert_many(batch, own_transaction=own, now=now, notify=self.notify)

    def declare(self, name: str, queue: str | None, catalog: Catalog) -> Steps[JobType]:
        checked = check_declaration(name, queue, catalog)
        self.catalog = None  # the next enqueue reads the new type
        return _declare({"name": checked, "queue": queue, "default_queue": self.settings.default_queue})


def _refused_tenant(exc: UnknownReferenceError, missing: list[uuid.UUID]) -> Exception:
    """The error for an insert its tenant's foreign key refused: it names the tenant that does not exist.
    The lookup runs on a fresh connection, since the refused transaction cannot run another statement."""
    return UnknownTenantError(missing[0]) if missing else exc


class Client:
    """Async client. Use as `async with Client(url) as client:` or call `open()` and `close()`."""

    def __init__(self, database_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pool = async_pool(self.settings, _url(database_url, self.settings), name="jobkeeper-client")
        self._db = AsyncDb(self.pool)
        self._core = _Core(self.settings)
        self.dead_letters = DeadLetters(self.pool)
        """List, show, replay and purge dead letters."""

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
        conn: psycopg.AsyncConnection[Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Enqueue one job. A duplicate idempotency key returns the original job instead. With
        `depends_on` (ids of jobs of the same tenant, at most 100) the job is `waiting` until they have all
        completed, and is cancelled if one of them fails or is cancelled."""
        (job,) = await self.enqueue_many([_item(type, payload, options)], conn=conn)
        return job

    async def schedule(
        self,
        type: str,
        payload: JsonValue,
        at: datetime | timedelta | float,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Enqueue a job to run at `at` (a datetime) or after it (seconds or a timedelta)."""
        when: JobOptions = {"run_at": at} if isinstance(at, datetime) else {"delay": at}
        return await self.enqueue(type, payload, conn=conn, **(options | when))

    async def enqueue_many(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
        now: datetime | None = None,
        validate: bool = True,
        catalog: Catalog | None = None,
    ) -> list[Job]:
        """Enqueue many jobs in one statement (per 5,000), all or none. Returns them in order.

        A job's `depends_on` may also name an earlier job of the same call by its index (an int). Each
        job's type must be known and its payload valid for its type (`InvalidJobError` otherwise);
        `validate=False` skips both, for a caller that has just checked them itself, with the `catalog`
        it checked them against."""
        items = list(jobs)
        if not items:
            return []
        if catalog is None:
            catalog = await self.catalog()
            if self._core.stale_for(items, catalog, validate):
                catalog = await self.catalog(refresh=True)
        batch, steps = self._core.insert(items, catalog, own=conn is None, now=now, validate=validate)
        try:
            return await self._db.run(steps, conn)
        except UnknownReferenceError as exc:
            if exc.name != "tenant_id":
                raise
            raise _refused_tenant(exc, await self._db.run(tenants.missing(batch.tenant_ids))) from exc

    async def get_job(self, job_id: uuid.UUID | str) -> Job | None:
        return await self._db.run(jobs.get(parse_job_id(job_id)))

    async def cancel(
        self, job_id: uuid.UUID | str, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Job | None:
        """Cancel a job: a pending one at once; a running one is asked to stop (its worker cancels it
        within a second and it ends `cancelled`). Returns the job as updated, or None when there is no such
        job; cancelling a cancelled job again returns it unchanged. Raises `JobFinishedError` when it
        completed or failed already (as the API answers 409 and `jobkeeper jobs cancel` exits 1)."""
        return await self._db.run(jobs.cancel(parse_job_id(job_id)), conn)

    async def declare_type(self, name: str, *, queue: str | None = None) -> JobType:
        """Make job type `name` known, so that its jobs can be enqueued before a worker handling it has
        started (unknown types are refused). A new type goes to `queue` (a shared queue; default: the
        default queue); declaring a known type again with `queue` changes its default queue."""
        return await self._db.run(self._core.declare(name, queue, await self.catalog(refresh=True)))

    async def catalog(self, *, refresh: bool = False) -> Catalog:
        """The queues and job types, cached for a few seconds (`refresh` reads them now)."""
        cached = self._core.cached(refresh)
        return cached if cached is not None else await self._db.run(self._core.load_catalog())


class SyncClient:
    """Blocking client with the same API as `Client`, for scripts and synchronous web apps."""

    def __init__(self, database_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pool = sync_pool(self.settings, _url(database_url, self.settings), name="jobkeeper-sync-client")
        self.pool.open(wait=False)
        self._db = SyncDb(self.pool)
        self._core = _Core(self.settings)

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
        conn: psycopg.Connection[Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Enqueue one job; see `Client.enqueue`."""
        (job,) = self.enqueue_many([_item(type, payload, options)], conn=conn)
        return job

    def schedule(
        self,
        type: str,
        payload: JsonValue,
        at: datetime | timedelta | float,
        *,
        conn: psycopg.Connection[Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Enqueue a job to run at or after `at`; see `Client.schedule`."""
        when: JobOptions = {"run_at": at} if isinstance(at, datetime) else {"delay": at}
        return self.enqueue(type, payload, conn=conn, **(options | when))

    def enqueue_many(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.Connection[Any] | None = None,
        now: datetime | None = None,
        validate: bool = True,
        catalog: Catalog | None = None,
    ) -> list[Job]:
        """Enqueue many jobs; see `Client.enqueue_many`."""
        items = list(jobs)
        if not items:
            return []
        if catalog is None:
            catalog = self.catalog()
            if self._core.stale_for(items, catalog, validate):
                catalog = self.catalog(refresh=True)
        batch, steps = self._core.insert(items, catalog, own=conn is None, now=now, validate=validate)
        try:
            return self._db.run(steps, conn)
        except UnknownReferenceError as exc:
            if exc.name != "tenant_id":
                raise
            raise _refused_tenant(exc, self._db.run(tenants.missing(batch.tenant_ids))) from exc

    def get_job(self, job_id: uuid.UUID | str) -> Job | None:
        return self._db.run(jobs.get(parse_job_id(job_id)))

    def cancel(self, job_id: uuid.UUID | str, *, conn: psycopg.Connection[Any] | None = None) -> Job | None:
        """Cancel a job; see `Client.cancel` (raises `JobFinishedError` for a completed or failed job)."""
        return self._db.run(jobs.cancel(parse_job_id(job_id)), conn)

    def declare_type(self, name: str, *, queue: str | None = None) -> JobType:
        """Make job type `name` known; see `Client.declare_type`."""
        return self._db.run(self._core.declare(name, queue, self.catalog(refresh=True)))

    def catalog(self, *, refresh: bool = False) -> Catalog:
        """The queues and job types; see `Client.catalog`."""
        cached = self._core.cached(refresh)
        return cached if cached is not None else self._db.run(self._core.load_catalog())
