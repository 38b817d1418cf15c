"""The worker: claims jobs of the types it has handlers for and runs them, `concurrency` at a time.

Parts, each with the start/stop lifecycle of `jobkeeper.lifecycle.Service`: the claim loop, the batched
outcome writer, the heartbeat and the notifier, each on a connection of its own; a pool serves the rest
(registration, and services added by the caller such as the maintenance leader).

Shutdown (`stop()`, or SIGTERM/SIGINT under `run()`): stop claiming; let running jobs finish until the
deadline; cancel those still running and return them to pending without spending their attempt; write
every outcome; mark the worker stopped; close the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import math
import random as _random
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError, DatabaseUnavailableError, JobkeeperError
from jobkeeper.lifecycle import Service
from jobkeeper.store import workers
from jobkeeper.store.outcomes import Claimed, JobRef
from jobkeeper.store.pool import AsyncPool, async_pool
from jobkeeper.store.run import AsyncConnection, AsyncDb, run
from jobkeeper.worker import operations
from jobkeeper.worker.claimer import ClaimLoop, Slots, load_catalog, wait_any
from jobkeeper.worker.completer import Completer
from jobkeeper.worker.connection import DedicatedConnection
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.executor import Executor, Policies
from jobkeeper.worker.heartbeat import Heartbeat
from jobkeeper.worker.notifier import Notifier
from jobkeeper.worker.outcomes import Kind, Outcome, error_entry
from jobkeeper.worker.registry import Registry, default_registry

log = logging.getLogger("jobkeeper.worker")

ServiceFactory = Callable[[AsyncPool, uuid.UUID], Service]
"""Builds an extra part run by the worker, e.g. `lambda pool, worker_id: Leader(pool, worker_id, tasks)`."""


ABANDON_AFTER = 1.0
"""Seconds a handler gets to end once cancelled (timeout, cancellation, shutdown) before the worker writes
its outcome without it and gives its slot back (see `Worker._abandon`)."""


@dataclass(slots=True)
class Running:
    claimed: Claimed
    ctx: JobContext
    deadline: float
    """When the job's timeout cancels it (time.monotonic)."""
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = field(default=None)
    """Why the worker cancelled it: cancel (requested), lost (rescued elsewhere) or shutdown."""
    interrupted_at: float | None = None
    abandoned: bool = False
    """The handler ignored its cancellation: its outcome was written without it, its task left behind."""


class Watchdog(Service):
    """Calls `check` every `interval` seconds on the worker's loop."""

    name = "watchdog"

    def __init__(self, check: Callable[[], None], interval: float) -> None:
        super().__init__()
        self.check = check
        self.interval = interval

    async def run(self) -> None:
        while not await self.sleep(self.interval):
            self.check()


class Worker:
    """Runs the handlers of `registry` (default: the global one filled by `@task`).

    `queues`: the queues to serve (default: all, or JOBKEEPER_WORKER_QUEUES); `concurrency`: jobs run at
    once; `batch_size`: jobs claimed per statement; `claims_in_flight`: claim statements running at once,
    each on its own connection; `poll_interval`: seconds between claims when idle and
    no NOTIFY arrives; `shutdown_timeout`: seconds running jobs get to finish on stop; `random`: the jitter
    source of exponential backoff (tests inject it); `services`: extra parts started after the worker
    registered and stopped before it closes its pool (the maintenance leader, for instance). Settings
    supply every default.

        async with Worker(url) as worker:  # or: await Worker(url).run()  (until SIGTERM/SIGINT)
            ...
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        batch_size: int | None = None,
        claims_in_flight: int | None = None,
        registry: Registry | None = None,
        poll_interval: float | None = None,
        shutdown_timeout: float | None = None,
        heartbeat_interval: float | None = None,
        random: Callable[[], float] = _random.random,
        services: Sequence[ServiceFactory] = (),
    ) -> None:
        self.settings = settings or Settings.from_env()
        url = database_url or self.settings.database_url
        if url is None:
            raise ConfigError(
                "DATABASE_URL is not set: pass a database URL to the worker, or set DATABASE_URL"
            )
        self.url = url
        self.id = uuid.uuid4()
        self.registry = registry if registry is not None else default_registry
        configured = queues if queues is not None else self.settings.worker_queues
        self.queues: list[str] | None = list(configured) if configured else None
        self.concurrency = concurrency or self.settings.worker_concurrency
        self.batch_size = min(batch_size or self.settings.worker_batch_size, self.concurrency)
        self.claims_in_flight = claims_in_flight or self.settings.worker_claims_in_flight
        self.poll_interval = poll_interval or self.settings.poll_interval
        self.shutdown_timeout = (
            shutdown_timeout if shutdown_timeout is not None else self.settings.shutdown_timeout
        )
        self.heartbeat_interval = heartbeat_interval or self.settings.heartbeat_every
        self.random = random
        self.policies = Policies()
        self.pool = async_pool(self.settings, self.url, name="jobkeeper-worker")
        self.db = AsyncDb(self.pool)
        self._service_factories = list(services)
        self._services: list[Service] = []
        self._running: dict[uuid.UUID, Running] = {}
        self._held: dict[uuid.UUID, JobRef] = {}
        self._connections: list[DedicatedConnection] = []
        self._abandoned: list[asyncio.Task[None]] = []
        self._started = False
        self._stopping: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._hurry = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, register the worker and its job types, and start claiming. Raises `ConfigError` for a
        handler in an unknown queue, `DatabaseUnavailableError` when the database cannot be reached."""
        if self._started:
            return
        if not len(self.registry):
            raise ConfigError("the worker has no handlers: register some with @task (or --import a module)")
        try:
            await self.db.open(self.settings.connect_timeout)
            async with self.db.connection() as conn:
                await self._register(conn)
        except DatabaseUnavailableError as exc:
            await self.pool.close()
            raise DatabaseUnavailableError(
                f"the worker could not reach the database: {exc.__cause__ or exc}"
            ) from exc
        except BaseException:  # a MigrationError among them: the schema is missing
            await self.pool.close()
            raise
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="jobkeeper-handler")
        self.slots = Slots(self.concurrency)
        connection = self._connection
        self.completer = Completer(connection("outcomes"), self.id, on_written=self._written)
        self.executor = Executor(
            self.registry, self.policies, self._threads, self.completer.set_progress, random=self.random
        )
        self.claimer = ClaimLoop(
            [connection("claim") for _ in range(self.claims_in_flight)],
            self.id,
            types=self.registry.names,
            queues=self.queues,
            slots=self.slots,
            batch_size=self.batch_size,
            poll_interval=self.poll_interval,
            policies=self.policies,
            start_job=self._start_job,
            backlog=lambda: self.completer.backlog,
            wait_written=self.completer.wait_drained,
        )
        self.heartbeat = Heartbeat(
            self.url,
            self.settings,
            self.id,
            interval=self.heartbeat_interval,
            held=lambda: list(self._held.values()),
            running=lambda: len(self._running),
            on_cancel=self._cancel_requested,
            on_lost=self._lost,
            stall_limit=self._stall_limit,
        )
        self.watchdog = Watchdog(self._abandon_overdue, interval=ABANDON_AFTER / 2)
        self.notifier = Notifier(
            connection("listen"),
            on_jobs=self._jobs_available,
            on_cancel=self._cancel_requested,
            on_listening=self.claimer.wake,
        )
        self._services = [factory(self.pool, self.id) for factory in self._service_factories]
        self.heartbeat.start()  # on a thread of its own
        for part in (self.completer, self.watchdog, self.notifier, self.claimer, *self._services):
            part.start()
        self._started = True
        log.info(
            "worker %s started: %d job types, queues %s, concurrency %d, batch %d",
            self.id,
            len(self.registry),
            ", ".join(self.queues) if self.queues else "all",
            self.concurrency,
            self.batch_size,
        )

    async def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully; running jobs get `timeout` seconds (default: the shutdown timeout) to finish.
        Idempotent: a second call waits for the first."""
        if not self._started:
            return
        if self._stopping is None:
            grace = self.shutdown_timeout if timeout is None else timeout
            self._stopping = asyncio.ensure_future(self._shutdown(grace))
        await asyncio.shield(self._stopping)

    def hurry(self) -> None:
        """End the shutdown's wait for running jobs now: they go back to pending, as at its deadline."""
        if not self._hurry.is_set():
            log.warning(
                "worker %s: stopping now, handing %d running jobs back to pending",
                self.id,
                len(self._running),
            )
            self._hurry.set()

    async def run(self) -> None:
        """Start, run until `stop()` or SIGTERM/SIGINT, then stop gracefully (a second signal: at once,
        the running jobs handed back to pending)."""
        await self.start()
        loop = asyncio.get_running_loop()
        requested = asyncio.Event()

        def on_signal(sig: signal.Signals) -> None:
            if requested.is_set():
                self.hurry()
            else:
                log.warning(
                    "worker %s: %s received, finishing %d running jobs (a second signal hands them back)",
                    self.id,
                    sig.name,
                    len(self._running),
                )
            requested.set()

        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
        try:
            await wait_any(requested, self._stopped)
            await self.stop()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running_jobs(self) -> int:
        return len(self._running)

    @property
    def abandoned_tasks(self) -> list[asyncio.Task[None]]:
        """Tasks of handlers that ignored their cancellation and still run (their outcome is written)."""
        self._abandoned = [task for task in self._abandoned if not task.done()]
        return list(self._abandoned)

    # -- internals -------------------------------------------------------------------------------------

    def _connection(self, purpose: str) -> DedicatedConnection:
        connection = DedicatedConnection(self.url, self.settings, purpose)
        self._connections.append(connection)
        return connection

    async def _register(self, conn: AsyncConnection) -> None:
        catalog = await load_catalog(conn)
        known = sorted(catalog.queues)
        for spec in self.registry:
            if spec.queue is not None and spec.queue not in catalog.queues:
                raise ConfigError(
                    f"task {spec.name!r} names unknown queue {spec.queue!r}; known queues: "
                    f"{', '.join(known)}{_hint(spec.queue, known)}"
                )
        for name in self.queues or ():
            if name not in catalog.queues:
                raise ConfigError(
                    f"the worker is asked to serve unknown queue {name!r}; known queues: "
                    f"{', '.join(known)}{_hint(name, known)}"
                )
        await operations.register_job_types(conn, self.registry, self.settings.default_queue)
        self.policies.catalog = await load_catalog(conn)
        await run(
            conn,
            workers.register(
                worker_id=self.id,
                queues=self.queues or known,
                job_types=self.registry.names,
                concurrency=self.concurrency,
            ),
        )

    def _start_job(self, claimed: Claimed) -> None:
        job = claimed.job
        self.slots.take(1)
        self._held[job.id] = claimed.ref
        ctx = self.executor.context(claimed, self.id)
        running = Running(claimed, ctx, deadline=time.monotonic() + ctx.timeout)
        self._running[job.id] = running
        running.task = asyncio.create_task(self._run_job(running))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job %s (%s) attempt %d started", job.id, job.type, job.attempts)

    async def _run_job(self, running: Running) -> None:
        claimed = running.claimed
        outcome: Outcome | None
        try:
            outcome = await self.executor.execute(claimed, running.ctx)
        except asyncio.CancelledError:
            if running.stop_reason is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = self._stopped_outcome(running)
        finally:
            if not running.abandoned:
                self._running.pop(claimed.job.id, None)
                self.slots.give()
        if running.abandoned:
            return  # its outcome was written without it
        if outcome is None:
            self._held.pop(claimed.job.id, None)
        else:
            self.completer.submit(outcome)

    def _stopped_outcome(self, running: Running) -> Outcome | None:
        ref = running.claimed.ref
        if running.stop_reason == "cancel":
            return Outcome(ref, Kind.CANCEL, error=error_entry("Cancelled", "cancellation requested"))
        if running.stop_reason == "shutdown":
            return Outcome(ref, Kind.RELEASE)
        return None  # lost: the job is no longer ours, there is nothing to write

    def _interrupt(self, running: Running, reason: str) -> None:
        if running.stop_reason is not None or running.task is None or running.task.done():
            return
        running.stop_reason = reason
        running.interrupted_at = time.monotonic()
        running.ctx._signal_cancel()
        running.task.cancel()

    def _stall_limit(self) -> float:
        """How long the loop may stay blocked before the heartbeat gives the jobs up (see heartbeat.py)."""
        longest = max((r.ctx.timeout for r in self._running.values()), default=0.0)
        return longest + ABANDON_AFTER + self.settings.lease_seconds

    def _abandon_overdue(self, *, now: float | None = None) -> None:
        """Abandon the jobs whose handler did not end `ABANDON_AFTER` seconds after its timeout or its
        interruption (`now=inf`: every interrupted job still running): an async handler that swallows
        `CancelledError` would otherwise hold its job (kept alive by the heartbeat) and its slot for ever.

        Also settles a job whose task was cancelled before its coroutine first ran (a cancel request or a
        shutdown in the same loop iteration as the claim): asyncio then never enters `_run_job`, so
        nothing else would write its outcome or give its slot back."""
        now = time.monotonic() if now is None else now
        for running in list(self._running.values()):
            task = running.task
            if task is None:
                continue
            if task.done():
                self._abandon(running, self._stopped_outcome(running), unstarted=True)
                continue
            since = running.interrupted_at if running.interrupted_at is not None else running.deadline
            if now < since + ABANDON_AFTER:
                continue
            if running.stop_reason is None:
                self._abandon(running, self.executor.timed_out(running.claimed, running.ctx))
            else:
                self._abandon(running, self._stopped_outcome(running))

    def _abandon(self, running: Running, outcome: Outcome | None, *, unstarted: bool = False) -> None:
        """Write the job's outcome without waiting for its handler, and give its slot back. The handler's
        task is left running (it ignores cancellation); whatever it returns later is discarded, as a timed
        out sync handler's result is."""
        job_id = running.claimed.job.id
        running.abandoned = True
        running.ctx._signal_cancel()
        if running.task is not None and not unstarted:
            self._abandoned.append(running.task)
        if self._running.get(job_id) is running:
            del self._running[job_id]
        self.slots.give()
        if not unstarted:
            running.ctx.logger.error(
                "the handler ignored its cancellation (%s) for %g s: abandoned, its outcome written "
                "without it",
                running.stop_reason or "timeout",
                ABANDON_AFTER,
            )
        if outcome is None:
            self._held.pop(job_id, None)
        else:
            self.completer.submit(outcome)

    def _cancel_requested(self, job_id: uuid.UUID) -> None:
        running = self._running.get(job_id)
        if running is not None:
            running.ctx.logger.info("cancellation requested; stopping the job")
            self._interrupt(running, "cancel")

    def _lost(self, refs: list[JobRef]) -> None:
        for ref in refs:
            running = self._running.get(ref.id)
            if running is not None and running.claimed.ref == ref:
                running.ctx.logger.warning("the job is no longer held by this worker (rescued?); stopping it")
                self._interrupt(running, "lost")

    def _jobs_available(self, queues: list[str]) -> None:
        if self.queues is None or any(name in self.queues for name in queues):
            self.claimer.wake()

    def _written(self, refs: list[JobRef]) -> None:
        for ref in refs:
            if self._held.get(ref.id) == ref:
                del self._held[ref.id]

    async def _wait_for_running(self, deadline: float) -> None:
        """Wait until the running jobs finish, the deadline passes or `hurry()`, saying which jobs it
        waits for and for how long every SHUTDOWN_REPORT_EVERY seconds (nothing new is claimed now)."""
        loop = asyncio.get_running_loop()
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if not tasks:
            return
        finished = asyncio.ensure_future(asyncio.wait(tasks))
        hurried = asyncio.ensure_future(self._hurry.wait())
        try:
            while not finished.done() and not self._hurry.is_set():
                left = deadline - loop.time()
                if left <= 0:
                    return
                running = [r for r in self._running.values() if r.task is not None and not r.task.done()]
                log.warning(
                    "worker %s: waiting %.0f s more for %d running jobs: %s (signal again to hand them back "
                    "now)",
                    self.id,
                    left,
                    len(running),
                    _describe(running),
                )
                await asyncio.wait(
                    [finished, hurried],
                    timeout=min(left, SHUTDOWN_REPORT_EVERY),
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            for waiter in (finished, hurried):
                waiter.cancel()

    async def _shutdown(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self.claimer.stop(grace=5.0)
        await self._wait_for_running(deadline)
        unfinished = list(self._running.values())
        for running in unfinished:
            self._interrupt(running, "shutdown")
        tasks = [r.task for r in unfinished if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await self.watchdog.stop(grace=0.0)
        self._abandon_overdue(now=math.inf)
        if unfinished:
            log.warning("worker %s: %d unfinished jobs returned to pending", self.id, len(unfinished))
        for service in reversed(self._services):
            await service.stop(grace=5.0)
        await self.completer.stop(grace=10.0)
        await self.notifier.stop(grace=0.0)
        await self.heartbeat.stop(grace=1.0)
        try:
            await self.db.run(workers.stop(self.id))
        except JobkeeperError as exc:
            log.warning("could not mark worker %s stopped: %s", self.id, exc)
        for connection in self._connections:
            await connection.close()
        await self.pool.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._stopped.set()
        log.info("worker %s stopped", self.id)


SHUTDOWN_REPORT_EVERY = 5.0
"""While a shutdown waits for running jobs, it says which and how long it still waits this often."""


def _describe(running: list[Running], shown: int = 5) -> str:
    names = [f"{r.claimed.job.type} {r.claimed.job.id}" for r in running[:shown]]
    more = f" and {len(running) - shown} more" if len(running) > shown else ""
    return ", ".join(names) + more


def run_worker(worker: Worker) -> bool:
    """Run `worker` in an event loop of its own until it stops (SIGTERM/SIGINT), like `asyncio.run`, except
    that handler tasks the worker abandoned (they ignored their cancellation) are not awaited: asyncio.run
    would wait for them for ever. Returns True when some were left running: the caller should then exit
    the process without waiting for them (their jobs' outcomes are written already)."""
    runner = asyncio.Runner()
    runner.run(worker.run())
    if worker.abandoned_tasks:
        return True
    runner.close()
    return False


def _hint(value: str, options: list[str]) -> str:
    close = difflib.get_close_matches(value, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
