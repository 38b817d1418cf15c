"""The claim loop: keeps the worker's slots busy with batches claimed in one statement each.

It claims whenever slots are free and the last claim found work, and otherwise waits for a wake-up (a
NOTIFY for one of its queues) or the poll interval. Under load it lets a few milliseconds pass so that
free slots gather into a real batch rather than many claims of one job.
It never claims while too many outcomes wait to be written (the database is the bottleneck then).

Several claims may be in flight at once, one per claim connection (`Worker(claims_in_flight=…)`, 2 by
default): while one statement runs in the database, the worker turns the previous batch into running
jobs. Each claim reserves its slots before it is sent, so the claims together never exceed the
concurrency. With one claim in flight a worker process spent about a third of each claim's turn waiting
for the database (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg

from jobkeeper import catalog
from jobkeeper.errors import JobkeeperError
from jobkeeper.lifecycle import Service
from jobkeeper.limits import outbound
from jobkeeper.store import outcomes
from jobkeeper.store.errors import translate
from jobkeeper.store.outcomes import Claimed
from jobkeeper.store.run import run
from jobkeeper.worker.connection import DedicatedConnection
from jobkeeper.worker.executor import Policies

log = logging.getLogger(__name__)

POLICY_REFRESH_SECONDS = 10.0


class Slots:
    """How many jobs run now, out of `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._changed = asyncio.Event()

    @property
    def free(self) -> int:
        return self.size - self.used

    def take(self, n: int) -> None:
        self.used += n

    def give(self) -> None:
        self.used -= 1
        self._changed.set()

    def release(self, n: int) -> None:
        """Give back `n` slots taken together (a claim's reservation)."""
        if n:
            self.used -= n
            self._changed.set()

    async def wait_free(self, n: int, timeout: float | None = None) -> bool:
        """Wait until at least `n` slots are free; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.free < n:
            self._changed.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


async def wait_any(*events: asyncio.Event, timeout: float | None = None) -> None:
    if any(e.is_set() for e in events):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class ClaimLoop(Service):
    name = "claim-loop"

    def __init__(
        self,
        connections: Sequence[DedicatedConnection],
        worker_id: uuid.UUID,
        *,
        types: Sequence[str],
        queues: Sequence[str] | None,
        slots: Slots,
        batch_size: int,
        poll_interval: float,
        policies: Policies,
        start_job: Callable[[Claimed], None],
        backlog: Callable[[], int],
        wait_written: Callable[[float], Awaitable[bool]],
        gather: float = 0.002,
    ) -> None:
        super().__init__()
        if not connections:
            raise ValueError("a claim loop needs at least one connection")
        self.connections = list(connections)
        self.worker_id = worker_id
        self.types = list(types)
        self.queues = list(queues) if queues is not None else None
        self.slots = slots
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.policies = policies
        self.start_job = start_job
        self.backlog = backlog
        self.wait_written = wait_written
        self.gather = gather
        self.claims = 0
        self.limiter_waits = 0
        """Jobs put back because their outbound rate limiter had no token (or no free slot)."""
        self._wakes = [asyncio.Event() for _ in self.connections]
        self._policies_loaded = time.monotonic()

    def wake(self) -> None:
        for event in self._wakes:
            event.set()

    async def run(self) -> None:
        await asyncio.gather(
            *(self._claim_loop(c, w) for c, w in zip(self.connections, self._wakes, strict=True))
        )

    async def _claim_loop(self, connection: DedicatedConnection, wake: asyncio.Event) -> None:
        more = True
        pause = 0.05
        while not self.stopping.is_set():
            await self._wait_for_room(more, wake)
            if self.stopping.is_set():
                break
            wake.clear()
            limit = min(self.slots.free, self.batch_size)
            if limit <= 0:  # another claim in flight took the room
                continue
            self.slots.take(limit)  # reserved until the claimed jobs are started
            try:
                try:
                    conn = await connection.get()
                    await self._refresh_policies(conn)
                    claimed = await run(
                        conn,
                        outcomes.claim(
                            worker_id=self.worker_id, types=self.types, queues=self.queues, limit=limit
                        ),
                    )
                except JobkeeperError as exc:
                    log.warning("claiming jobs failed (%s); trying again in %.2f s", exc, pause)
                    if await self.sleep(pause):
                        break
                    pause = min(pause * 2, 5.0)
                    continue
                pause = 0.05
                self.claims += 1
                claimed = await self._gate(conn, claimed)
            finally:
                self.slots.release(limit)
            for job in claimed:
                self.start_job(job)
            # Anything claimed: there may be more (a batch can come back short when other workers
            # locked some rows, or tenants' windows were small); only an empty claim waits.
            more = bool(claimed)

    async def _gate(self, conn: psycopg.AsyncConnection[Any], claimed: list[Claimed]) -> list[Claimed]:
        """Take outbound rate-limiter tokens for the claimed jobs whose type names a limiter; the ones
        without a token are already back to pending (at their token's time) and are not started."""
        requests = []
        for item in claimed:
            job_type = self.policies.catalog.job_types.get(item.job.type)
            if job_type is not None and job_type.limiter is not None:
                requests.append((item.job.id, job_type.limiter))
        if not requests:
            return claimed
        try:
            result = await outbound.gate(conn, requests, worker_id=self.worker_id)
        except JobkeeperError as exc:
            # Failing open: the jobs run now (the provider's own 429s are retried) rather than stay
            # claimed and unstarted until the rescuer returns them.
            log.warning("rate limiters unavailable (%s); running %d jobs ungated", exc, len(requests))
            return claimed
        if not result.deferred:
            return claimed
        self.limiter_waits += len(result.deferred)
        deferred = {job_id for job_id, _ in result.deferred}
        return [item for item in claimed if item.job.id not in deferred]

    async def _wait_for_room(self, more: bool, wake: asyncio.Event) -> None:
        while self.slots.free == 0 and not self.stopping.is_set():
            await self.slots.wait_free(1, timeout=0.1)
        if not more:
            await wait_any(wake, self.stopping, timeout=self.poll_interval)
        elif self.slots.free < self.batch_size and self.slots.used and self.gather:
            await self.slots.wait_free(min(self.batch_size, self.slots.size), timeout=self.gather)
        # The database is behind with outcomes: claiming more would only lengthen the queue.
        if self.backlog() > 2 * self.slots.size:
            await self.wait_written(1.0)

    async def _refresh_policies(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if time.monotonic() - self._policies_loaded < POLICY_REFRESH_SECONDS:
            return
        self._policies_loaded = time.monotonic()  # one refresh, whichever claim in flight comes first
        self.policies.catalog = await load_catalog(conn)


async def load_catalog(conn: psycopg.AsyncConnection[Any]) -> catalog.Catalog:
    """The queues and job types, with the store's errors."""
    try:
        return await catalog.load_catalog(conn)
    except psycopg.Error as exc:  # until the catalog is read through the store (issue 16, WP3)
        raise translate(exc) from exc
