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


# Session settings per purpose. The claim runs one generic plan per connection (planning each claim cost
# about as much as running it), with sorts and sequential scans as the planner's last resort, so that stale
# statistics cannot turn it into a read of every pending job. Figures: docs/benchmarks.md#claim-connection.
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
