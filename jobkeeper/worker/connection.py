"""A connection of its own for each hot part of the worker (claim, outcomes, heartbeat, LISTEN).

Held rather than checked out of the pool per statement: no health-check round trip on the hot path, and
the heartbeat never queues behind the claim loop. A broken connection is replaced on next use. JIT is
off: the worker's statements are short, and compiling them would cost more than running them.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import psycopg

from jobkeeper.config import Settings
from jobkeeper.store.errors import translate

log = logging.getLogger(__name__)


# Session settings per purpose. The claim statement runs with one generic plan, made once per connection
# (and again when ANALYZE changes the statistics): planning it for its parameters every time cost about as
# much as running it. Measured as the backend's CPU per claimed job (bench/claim_cpu.py, batches of 50,
# 12,000 pending jobs beside 20,000 finished ones): 157-168 us planned per call, 96-105 us with the generic
# plan; with 20 tenants 200 vs 158 us; with statistics taken before the pending jobs existed 167 vs 94 us.
# Sorts are the last resort of the claim's plans (`enable_sort`, `enable_incremental_sort` off): with the
# statistics of a table holding a long history, the planner otherwise read and sorted every pending job of
# the queue instead of walking the pending-jobs index in order (66 ms instead of 22 per claim of 50 with
# 1,000,000 finished and 10,000 pending jobs). Sorts the claim needs (ranking within a batch) still run.
# Sequential scans too: a generic plan made while a partition's statistics say it is empty would otherwise
# read the whole partition on every claim once it has filled up.
PURPOSE_OPTIONS = {
    "claim": "-c plan_cache_mode=force_generic_plan -c enable_sort=off -c enable_incremental_sort=off"
    " -c enable_seqscan=off"
}


def connection_kwargs(settings: Settings, purpose: str) -> dict[str, Any]:
    kwargs = settings.connection_kwargs()
    options = [kwargs.get("options", ""), "-c jit=off", PURPOSE_OPTIONS.get(purpose, "")]
    kwargs["options"] = " ".join(option for option in options if option)
    kwargs["application_name"] = f"jobkeeper-worker-{purpose}"
    kwargs["autocommit"] = True
    return kwargs


class DedicatedConnection:
    def __init__(self, url: str, settings: Settings, purpose: str) -> None:
        self.url = url
        self.purpose = purpose
        self._kwargs = connection_kwargs(settings, purpose)
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def get(self) -> psycopg.AsyncConnection[Any]:
        """A live connection: the held one, or a new one when it is closed or broken."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
            log.info("reconnecting the worker's %s connection", self.purpose)
        self._conn = None
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.url, **self._kwargs)
        except psycopg.Error as exc:  # callers catch the store's errors, a failed connect among them
            raise translate(exc) from exc
        return self._conn

    @property
    def backend_pid(self) -> int | None:
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class DedicatedSyncConnection:
    """`DedicatedConnection` for a thread of its own (the heartbeat's): a sync connection."""

    def __init__(self, url: str, settings: Settings, purpose: str) -> None:
        self.url = url
        self.purpose = purpose
        self._kwargs = connection_kwargs(settings, purpose)
        self._conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        """A live connection: the held one, or a new one when it is closed or broken."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
            log.info("reconnecting the worker's %s connection", self.purpose)
        self._conn = None
        try:
            self._conn = psycopg.Connection.connect(self.url, **self._kwargs)
        except psycopg.Error as exc:
            raise translate(exc) from exc
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
