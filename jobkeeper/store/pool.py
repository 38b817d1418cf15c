"""Connection pools (async and sync) built from the settings: sizes, timeouts, TLS, error handling.

Every connection is checked when it is checked out. psycopg_pool retries a failed check with the next idle
connection, backing off 1 s, 2 s, 4 s… between them, so after a restart or a fail-over (every idle
connection dead at once) a request would wait out the acquire timeout. The first failed check therefore
drains the pool: its idle connections are closed and replaced, and the request waits for a new one.
Attempts to connect are at most RECONNECT_MAX_DELAY apart, however long the database was unreachable.
"""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from jobkeeper.config import Settings

log = logging.getLogger(__name__)

AsyncPool: TypeAlias = AsyncConnectionPool[Any]
"""The async pool, as parts outside the store name it (the worker hands it to its maintenance tasks), so
that they need not import the driver."""

RECONNECT_MAX_DELAY = 2.0
"""Longest pause between two attempts to open a connection. psycopg_pool doubles it from 1 s without a
bound (1, 2, 4 … 128 s), so after a long outage (a server without free connection slots, a long restart)
a pool would find the server back only as long after as the outage had lasted; an attempt every 2 s costs
a refused connection and finds the server back within 2 s."""


class _CappedAttempt(AttemptWithBackoff):
    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_MAX_DELAY)


class _AsyncPool(AsyncConnectionPool[Any]):
    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _CappedAttempt(timeout=self.reconnect_timeout), growing)


class _SyncPool(ConnectionPool[Any]):
    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _CappedAttempt(timeout=self.reconnect_timeout), growing)


def _pool_kwargs(settings: Settings, url: str) -> dict[str, Any]:
    return {
        "conninfo": url,
        "kwargs": {**settings.connection_kwargs(), "autocommit": True},
        "min_size": settings.pool_min,
        "max_size": settings.pool_max,
        "timeout": settings.acquire_timeout,
        "max_idle": settings.idle_timeout,
        # After a server restart the pool finds broken connections when it checks them out (see `check`
        # below); reconnect attempts back off instead of failing the pool.
        "reconnect_timeout": 300.0,
        "open": False,
    }


def _reconnect_failed_async(pool: AsyncConnectionPool[Any]) -> None:
    log.error("database pool %s could not reconnect for %.0f s", pool.name, pool.reconnect_timeout)


def _reconnect_failed_sync(pool: ConnectionPool[Any]) -> None:
    log.error("database pool %s could not reconnect for %.0f s", pool.name, pool.reconnect_timeout)


def async_pool(settings: Settings, url: str, *, name: str = "jobkeeper") -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] | None = None

    async def check(conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            if pool is not None:
                log.warning("database pool %s found a broken connection; replacing the idle ones", name)
                await pool.drain()
            raise

    pool = _AsyncPool(
        name=name, check=check, reconnect_failed=_reconnect_failed_async, **_pool_kwargs(settings, url)
    )
    return pool


def sync_pool(settings: Settings, url: str, *, name: str = "jobkeeper") -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] | None = None

    def check(conn: psycopg.Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if pool is not None:
                log.warning("database pool %s found a broken connection; replacing the idle ones", name)
                pool.drain()
            raise

    pool = _SyncPool(
        name=name, check=check, reconnect_failed=_reconnect_failed_sync, **_pool_kwargs(settings, url)
    )
    return pool
