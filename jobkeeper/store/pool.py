"""Connection pools (async and sync) built from the settings: sizes, timeouts, TLS, error handling."""

from __future__ import annotations

import logging
from typing import Any

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
        # After a server restart the pool finds broken connections when it checks them out and replaces
        # them; reconnect attempts back off instead of failing the pool.
        "reconnect_timeout": 300.0,
        "open": False,
    }


def _reconnect_failed_async(pool: AsyncConnectionPool[Any]) -> None:
    log.error("database pool %s could not reconnect for %.0f s", pool.name, pool.reconnect_timeout)


def _reconnect_failed_sync(pool: ConnectionPool[Any]) -> None:
    log.error("database pool %s could not reconnect for %.0f s", pool.name, pool.reconnect_timeout)


def async_pool(settings: Settings, url: str, *, name: str = "jobkeeper") -> AsyncConnectionPool[Any]:
    return AsyncConnectionPool(
        name=name,
        check=AsyncConnectionPool.check_connection,
        reconnect_failed=_reconnect_failed_async,
        **_pool_kwargs(settings, url),
    )


def sync_pool(settings: Settings, url: str, *, name: str = "jobkeeper") -> ConnectionPool[Any]:
    return ConnectionPool(
        name=name,
        check=ConnectionPool.check_connection,
        reconnect_failed=_reconnect_failed_sync,
        **_pool_kwargs(settings, url),
    )
