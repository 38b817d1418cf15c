"""The batched outcome writer: outcomes wait a few milliseconds and are written in one statement.

One statement per flush (`record_outcomes`, an `UPDATE … FROM unnest(…)`), never one transaction per job.
While a flush runs, the next outcomes gather, so the batch grows with the load. A flush that fails on a
lost connection is retried with the same outcomes (the statement is idempotent: it only touches jobs still
processing under this worker and attempt). Progress reports ride on the same cycle.

Jobs with dependents (`has_dependents`, returned by the statement) that finished get a second statement,
`dependencies.settle`, once the first has committed: it releases or cancels their waiting children. Jobs
without dependents never pay for it. If it cannot run (the connection is lost for good), the maintenance
leader's sweep settles those children later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable

from jobkeeper.errors import DatabaseUnavailableError, JobkeeperError
from jobkeeper.lifecycle import Service
from jobkeeper.store import dependencies, outcomes
from jobkeeper.store.outcomes import JobRef
from jobkeeper.store.run import run
from jobkeeper.types import Tier
from jobkeeper.worker.connection import DedicatedConnection
from jobkeeper.worker.outcomes import Outcome

log = logging.getLogger(__name__)

MAX_BATCH = 1000
RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class Completer(Service):
    name = "completer"

    def __init__(
        self,
        connection: DedicatedConnection,
        worker_id: uuid.UUID,
        *,
        delay: float = 0.002,
        on_written: Callable[[list[JobRef]], None] = lambda refs: None,
    ) -> None:
        super().__init__()
        self.connection = connection
        self.worker_id = worker_id
        self.delay = delay
        self.on_written = on_written
        self._outcomes: list[Outcome] = []
        self._writing = 0
        self._progress: dict[JobRef, str] = {}
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._loop = asyncio.get_running_loop()

    @property
    def backlog(self) -> int:
        """Outcomes not yet written (buffered or in the statement being written)."""
        return len(self._outcomes) + self._writing

    def submit(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._drained.clear()
        self._wake.set()

    def set_progress(self, ref: JobRef, progress: str) -> None:
        """Thread-safe: keep the latest progress of a job; the next flush writes it."""
        with self._lock:
            self._progress[ref] = progress
        self._loop.call_soon_threadsafe(self._wake.set)

    async def wait_drained(self, timeout: float | None = None) -> bool:
        """Wait until every submitted outcome is written; False on timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout)
        return self._drained.is_set()

    async def run(self) -> None:
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            while True:
                if not self._outcomes and not self._progress:
                    if self.stopping.is_set():
                        return
                    wake = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({wake, stop}, return_when=asyncio.FIRST_COMPLETED)
                    wake.cancel()
                self._wake.clear()
                if self.delay and len(self._outcomes) < MAX_BATCH and not self.stopping.is_set():
                    await asyncio.sleep(self.delay)
                await self._flush()
        finally:
            stop.cancel()

    async def _flush(self) -> None:
        batch, self._outcomes = self._outcomes[:MAX_BATCH], self._outcomes[MAX_BATCH:]
        with self._lock:
            progress, self._progress = self._progress, {}
        self._writing = len(batch)
        try:
            # Progress first: a job that reports and finishes in the same few milliseconds keeps its last
            # progress (the progress update only touches running jobs).
            if progress:
                await self._write_progress(progress)
            if batch:
                await self._write_with_retries(batch)
                self.on_written([o.job for o in batch])
        finally:
            self._writing = 0
            if not self._outcomes:
                self._drained.set()

    async def _write_with_retries(self, batch: list[Outcome]) -> None:
        for attempt, pause in enumerate((*RETRY_DELAYS, None)):
            try:
                await self._write(batch)
                return
            # Unreachable, or the statement cancelled (StatementTimeoutError is one): the same batch again.
            except DatabaseUnavailableError as exc:
                if pause is None or (self.stopping.is_set() and attempt >= 2):
                    log.error(
                        "could not write %d job outcomes (%s); their jobs stay processing until the "
                        "rescuer returns them",
                        len(batch),
                        exc,
                    )
                    return
                log.warning("writing job outcomes failed (%s); retrying in %.2f s", exc, pause)
                await asyncio.sleep(pause)
            # Any other error of the store (a value the database refused, …): one outcome is to blame.
            except JobkeeperError as exc:
                if len(batch) == 1:
                    log.error("could not write the outcome of job %s: %s", batch[0].job.id, exc)
                    return
                # One bad outcome must not sink the others: write them one by one.
                log.warning("writing %d job outcomes failed (%s); writing them one by one", len(batch), exc)
                for outcome in batch:
                    await self._write_with_retries([outcome])
                return

    async def _write(self, batch: list[Outcome]) -> None:
        # Rows are locked in id order, as the heartbeat locks them: the two never deadlock.
        batch = sorted(batch, key=lambda o: o.job.id)
        conn = await self.connection.get()
        recorded = await run(
            conn,
            outcomes.record(
                worker_id=self.worker_id,
                ids=[o.job.id for o in batch],
                tiers=[o.job.tier.value for o in batch],
                attempts=[o.job.attempt for o in batch],
                kinds=[o.kind.value for o in batch],
                results=[o.result for o in batch],
                errors=[o.error for o in batch],
                delays=[o.delay for o in batch],
            ),
        )
        if recorded.parents:
            await self._settle(recorded.parents)
        written = recorded.written
        if len(written) < len(batch) and log.isEnabledFor(logging.DEBUG):
            kept = {row[0] for row in written}
            for outcome in batch:
                if outcome.job.id not in kept:
                    log.debug("outcome of job %s discarded: no longer held by this worker", outcome.job.id)

    async def _settle(self, parents: list[uuid.UUID]) -> None:
        """Release or cancel the waiting children of `parents` (autocommit: the outcomes are committed).
        A failure is logged, not retried here: the outcome is written, and the sweep covers the children."""
        try:
            await run(await self.connection.get(), dependencies.settle(parents))
        except JobkeeperError as exc:
            log.warning(
                "could not settle the dependents of %d finished jobs (%s); the maintenance sweep will",
                len(parents),
                exc,
            )

    async def _write_progress(self, progress: dict[JobRef, str]) -> None:
        refs = sorted(progress, key=lambda r: r.id)  # id order, like every writer of these rows
        try:
            await run(
                await self.connection.get(),
                outcomes.record_progress(
                    worker_id=self.worker_id,
                    ids=[r.id for r in refs],
                    tiers=[Tier(r.tier).value for r in refs],
                    progress=[progress[r] for r in refs],
                ),
            )
        except JobkeeperError as exc:
            log.warning("could not write the progress of %d jobs: %s", len(refs), exc)
