"""Wake-ups over LISTEN/NOTIFY, on a connection of their own.

`jobkeeper_jobs` carries the names of queues that got jobs (comma-separated, no job data): the claim loop
wakes when one of them is a queue it serves. `jobkeeper_cancel` carries a job id whose cancellation was
requested. Notifications are only a shortcut: the claim loop also polls, and the heartbeat reads the
cancellation flags, so a lost notification (or a pooler in transaction mode, where LISTEN does not work)
delays work by at most a poll interval. After a reconnect LISTEN is issued again and the claim loop is
woken, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import psycopg

from jobkeeper.errors import JobkeeperError
from jobkeeper.lifecycle import Service
from jobkeeper.store import workers
from jobkeeper.store.run import run
from jobkeeper.worker.connection import DedicatedConnection

log = logging.getLogger(__name__)

JOBS_CHANNEL = "jobkeeper_jobs"
CANCEL_CHANNEL = "jobkeeper_cancel"
CHECK_STOP_EVERY = 0.5


class Notifier(Service):
    name = "notifier"

    def __init__(
        self,
        connection: DedicatedConnection,
        *,
        on_jobs: Callable[[list[str]], None],
        on_cancel: Callable[[uuid.UUID], None],
        on_listening: Callable[[], None],
    ) -> None:
        super().__init__()
        self.connection = connection
        self.on_jobs = on_jobs
        self.on_cancel = on_cancel
        self.on_listening = on_listening
        self.listening = False
        self.connects = 0

    async def run(self) -> None:
        pause = 0.1
        while not self.stopping.is_set():
            try:
                conn = await self.connection.get()
                await run(conn, workers.listen())
                self.listening = True
                self.connects += 1
                self.on_listening()
                pause = 0.1
                while not self.stopping.is_set():
                    async for notify in conn.notifies(timeout=CHECK_STOP_EVERY):
                        self._dispatch(notify.channel, notify.payload)
            # The store's errors (connecting, LISTEN), or psycopg's from notifies(), which is plumbing.
            except (JobkeeperError, psycopg.Error) as exc:
                self.listening = False
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                if await self.sleep(pause):
                    break
                pause = min(pause * 2, 5.0)
        self.listening = False

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == JOBS_CHANNEL:
            self.on_jobs([name for name in payload.split(",") if name])
        elif channel == CANCEL_CHANNEL:
            try:
                job_id = uuid.UUID(payload)
            except ValueError:
                log.debug("ignoring a malformed cancellation notice %r", payload)
                return
            self.on_cancel(job_id)
