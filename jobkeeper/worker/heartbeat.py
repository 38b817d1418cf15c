"""Heartbeats: one statement every few seconds, on a task and a connection of their own, refreshes the
worker's row and every job it holds, and reads back which of them were asked to cancel.

Handlers never run on this task, and sync handlers run in threads, so a blocking handler does not stop
the heartbeat. A job missing from the answer is no longer held by this worker (the rescuer returned it):
the worker stops running it, since its outcome would be discarded anyway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import psycopg

from jobkeeper.lifecycle import Service
from jobkeeper.store.queries import query
from jobkeeper.worker.connection import DedicatedConnection
from jobkeeper.worker.context import JobRef

log = logging.getLogger(__name__)


class Heartbeat(Service):
    name = "heartbeat"

    def __init__(
        self,
        connection: DedicatedConnection,
        worker_id: uuid.UUID,
        *,
        interval: float,
        held: Callable[[], list[JobRef]],
        running: Callable[[], int],
        on_cancel: Callable[[uuid.UUID], None],
        on_lost: Callable[[list[JobRef]], None],
    ) -> None:
        super().__init__()
        self.connection = connection
        self.worker_id = worker_id
        self.interval = interval
        self.held = held
        self.count_running = running
        self.on_cancel = on_cancel
        self.on_lost = on_lost
        self.beats = 0

    async def run(self) -> None:
        while not await self.sleep(self.interval):
            await self.beat()

    async def beat(self) -> None:
        refs = sorted(self.held(), key=lambda r: r.id)  # id order, like the outcome writer: no deadlock
        try:
            conn = await self.connection.get()
            cur = await conn.execute(
                query("heartbeat"),
                {
                    "ids": [r.id for r in refs],
                    "tiers": [r.tier.value for r in refs],
                    "worker_id": self.worker_id,
                    "running": self.count_running(),
                },
            )
            rows = await cur.fetchall()
        except psycopg.Error as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        self.beats += 1
        alive = set()
        for job_id, cancel_requested in rows:
            alive.add(job_id)
            if cancel_requested:
                self.on_cancel(job_id)
        lost = [r for r in refs if r.id not in alive]
        if lost:
            self.on_lost(lost)
