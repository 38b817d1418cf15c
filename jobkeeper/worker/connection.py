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

log = logging.getLogger(__name__)


# Session settings per purpose. The claim statement is planned for its parameters every time: with the
# generic plan that PostgreSQL otherwise settles on after five executions, a claim of 50 took about
# 18 ms instead of 11 (bench/explain.py, 20,000 pending jobs); planning is the smaller part of it.
# Sorts are the last resort of the claim's plans: with statistics taken when few jobs were pending (the
# usual state of a table holding a long history), the planner sorted every pending job of the queue three
# times per claim instead of walking the pending-jobs indexes in order (Merge Append): 66 ms instead of
# 22 per claim of 50 with 1,000,000 finished and 10,000 pending jobs; 9-12 ms instead of 14-16 with
# fresh statistics. Sorts the claim needs (ranking within a batch of candidates) still run.
PURPOSE_OPTIONS = {"claim": "-c plan_cache_mode=force_custom_plan -c enable_sort=off"}


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
        self._conn = await psycopg.AsyncConnection.connect(self.url, **self._kwargs)
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
