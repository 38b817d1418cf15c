"""The leader lease: one row in `jobkeeper.leases`, held by one worker at a time (database clock).

Every worker runs a `Leader`. It tries to take or renew the lease every `ttl / 3` seconds; while it
holds it, it runs the maintenance tasks that are due. When the holder dies, its lease expires after `ttl`
and the next worker to try takes over: fail-over within one lease. Maintenance tasks must be safe if two
leaders overlap for a moment (a paused holder whose lease expired): each is one set-based statement with
row locks, never "read, decide, write".
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Protocol

from jobkeeper.lifecycle import Service
from jobkeeper.store import leases
from jobkeeper.store.pool import AsyncPool
from jobkeeper.store.run import AsyncDb

log = logging.getLogger(__name__)

LEASE_NAME = "maintenance"


class MaintenanceTask(Protocol):
    name: str
    interval: float

    async def run(self, pool: AsyncPool) -> None: ...


async def acquire(
    pool: AsyncPool,
    holder: uuid.UUID,
    *,
    ttl: float,
    name: str = LEASE_NAME,
    now: datetime | None = None,
) -> bool:
    """Take or renew the lease; True when `holder` holds it afterwards."""
    return await AsyncDb(pool).run(leases.acquire(name=name, holder=holder, ttl=ttl, now=now))


async def release(pool: AsyncPool, holder: uuid.UUID, *, name: str = LEASE_NAME) -> None:
    await AsyncDb(pool).run(leases.release(name=name, holder=holder))


class Leader(Service):
    name = "leader"

    def __init__(
        self,
        pool: AsyncPool,
        holder: uuid.UUID,
        tasks: list[MaintenanceTask],
        *,
        ttl: float = 30.0,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.holder = holder
        self.tasks = tasks
        self.ttl = ttl
        self.is_leader = False
        self.checks = 0
        """How many times this worker has tried to take or renew the lease."""
        self._last_run: dict[str, float] = {}

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                held = await acquire(self.pool, self.holder, ttl=self.ttl)
            except Exception as exc:
                log.warning("leader lease check failed: %s", exc)
                held = False
            self.checks += 1
            if held != self.is_leader:
                log.info("%s the maintenance lease (worker %s)", "took" if held else "lost", self.holder)
                self.is_leader = held
            if held:
                await self._run_due_tasks()
            if await self.sleep(self._next_wake()):
                break
        if self.is_leader:
            self.is_leader = False
            try:
                await release(self.pool, self.holder)
            except Exception as exc:
                log.warning("could not release the maintenance lease: %s", exc)

    def _next_wake(self) -> float:
        renew = self.ttl / 3
        if not self.is_leader or not self.tasks:
            return renew
        now = time.monotonic()
        due = min(self._last_run.get(t.name, 0.0) + t.interval - now for t in self.tasks)
        return max(0.05, min(renew, due))

    async def _run_due_tasks(self) -> None:
        now = time.monotonic()
        for task in self.tasks:
            if now - self._last_run.get(task.name, float("-inf")) < task.interval:
                continue
            self._last_run[task.name] = now
            try:
                await task.run(self.pool)
            except Exception:
                log.exception("maintenance task %s failed; it runs again in %.0f s", task.name, task.interval)
