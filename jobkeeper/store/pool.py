"""Connection pools (async and sync) built from the settings: sizes, timeouts, TLS, error handling.

Every connection is checked when it is checked out. psycopg_pool retries a failed check with the next idle
connection, backing off 1 s, 2 s, 4 s… between them, so after a restart or a fail-over (every idle
connection dead at once) a request would wait out the acquire timeout. The first failed check therefore
drains the pool: its idle connections are closed and replaced, and the request waits for a new one.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jobkeeper.config import Settings

log = logging.getLogger(__name__)


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

    pool = AsyncConnectionPool(
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

    pool = ConnectionPool(
        name=name, check=check, reconnect_failed=_reconnect_failed_sync, **_pool_kwargs(settings, url)
    )
    return pool
