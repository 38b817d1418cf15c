"""Heartbeats: one statement every few seconds refreshes the worker's row and every job it holds, and
reads back which of them were asked to cancel.

The heartbeat runs on a thread of its own with a (sync) connection of its own, not on the worker's event
loop: an async handler that blocks the loop with sync code (`time.sleep`, a CPU-bound loop, a blocking
client) must not make the worker look dead, or the rescuer would hand every job it holds to another
worker and they would run twice. What the heartbeat learns goes back to the loop with
`call_soon_threadsafe`: a cancellation request, and the jobs missing from the answer, which are no
longer held by this worker (the rescuer returned them), so the worker stops running them.

A loop that stays blocked for good would hold its jobs for ever, though. Each beat also pings the loop;
once it has not answered for longer than `stall_limit()` (the longest timeout of the running jobs plus
the lease: no handler may legitimately hold it longer), the heartbeat stops refreshing the jobs, so that
the rescuer returns them, and says so in the log. The worker's own row is still refreshed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jobkeeper.config import Settings
from jobkeeper.errors import JobkeeperError
from jobkeeper.store import workers
from jobkeeper.store.outcomes import JobRef
from jobkeeper.store.run import run_sync
from jobkeeper.worker.connection import DedicatedSyncConnection

log = logging.getLogger(__name__)


class Heartbeat:
    name = "heartbeat"

    def __init__(
        self,
        url: str,
        settings: Settings,
        worker_id: uuid.UUID,
        *,
        interval: float,
        held: Callable[[], list[JobRef]],
        running: Callable[[], int],
        on_cancel: Callable[[uuid.UUID], None],
        on_lost: Callable[[list[JobRef]], None],
        stall_limit: Callable[[], float],
    ) -> None:
        self.url = url
        self.worker_id = worker_id
        self.interval = interval
        self.held = held
        self.count_running = running
        self.on_cancel = on_cancel
        self.on_lost = on_lost
        self.stall_limit = stall_limit
        self.beats = 0
        self._connection = DedicatedSyncConnection(url, settings, "heartbeat")
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_seen = 0.0
        self._allowance = 0.0
        self._stalled = False

    # -- lifecycle (called on the worker's loop) --------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._pong()
        self._halt.clear()
        self._thread = threading.Thread(target=self._main, name="jobkeeper-heartbeat", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop beating; waits up to `grace` seconds for a beat in flight. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._halt.set()
        await asyncio.to_thread(thread.join, grace)
        if thread.is_alive():
            log.warning("the heartbeat thread did not stop within %g s; leaving it", grace)

    def _pong(self) -> None:
        """Runs on the worker's loop: it is responsive."""
        self._loop_seen = time.monotonic()
        self._allowance = self.stall_limit()

    # -- the thread -------------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            while not self._halt.wait(self.interval):
                self.beat()
        except Exception:
            log.exception("the heartbeat stopped by an unexpected error")
        finally:
            self._connection.close()

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: the worker is gone
            self._loop.call_soon_threadsafe(callback, *args)

    def beat(self) -> None:
        """One heartbeat (on the heartbeat thread)."""
        self._to_loop(self._pong)
        stalled_for = time.monotonic() - self._loop_seen
        stalled = stalled_for > self._allowance
        if stalled != self._stalled:
            self._stalled = stalled
            if stalled:
                log.error(
                    "the worker's event loop has not answered for %.0f s (a handler blocks it?): its jobs "
                    "are no longer heartbeated and will be rescued",
                    stalled_for,
                )
            else:
                log.warning("the worker's event loop answers again")
        refs = [] if stalled else sorted(self._held_now(), key=lambda r: r.id)  # id order: no deadlock
        try:
            rows = run_sync(
                self._connection.get(),
                workers.heartbeat(
                    worker_id=self.worker_id,
                    ids=[r.id for r in refs],
                    tiers=[r.tier.value for r in refs],
                    running=self.count_running(),
                ),
            )
        except JobkeeperError as exc:  # the store's errors: unreachable, or any other
            log.warning("heartbeat failed: %s", exc)
            return
        self.beats += 1
        alive = set()
        for job_id, cancel_requested in rows:
            alive.add(job_id)
            if cancel_requested:
                self._to_loop(self.on_cancel, job_id)
        lost = [r for r in refs if r.id not in alive]
        if lost:
            self._to_loop(self.on_lost, lost)

    def _held_now(self) -> list[JobRef]:
        for _ in range(10):  # the loop's thread may change the jobs held while they are read
            with contextlib.suppress(RuntimeError):
                return self.held()
        return self.held()
