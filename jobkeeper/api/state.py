"""What every request handler reaches through `State`: settings, pools, auth, limiter, caches, metrics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from jobkeeper.api.auth import AuthConfig
from jobkeeper.api.cache import TtlCache
from jobkeeper.api.health import Readiness
from jobkeeper.api.metrics import ApiMetrics
from jobkeeper.api.ratelimit import RateLimiter
from jobkeeper.api.schemas import QueueStats
from jobkeeper.api.tenancy import Tenancy
from jobkeeper.client import Client
from jobkeeper.config import Settings
from jobkeeper.store.pool import AsyncPool, async_pool

CLIENT_POOL_MAX = 2


class Connections:
    """The database pools of a running app: made at start-up and closed at shutdown, so one app object can
    be started again (tests do). Pools open without waiting: the API starts, and answers 503, while the
    database is away."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self._pool: AsyncPool | None = None
        self._client: Client | None = None

    async def open(self) -> None:
        self._pool = async_pool(self.settings, self.database_url, name="jobkeeper-api")
        # The client enqueues and cancels on the request's own connection; its pool only loads the catalog
        # of queues and job types, so it stays small and never competes with request transactions.
        client_settings = dataclasses.replace(
            self.settings,
            pool_min=min(1, self.settings.pool_min),
            pool_max=CLIENT_POOL_MAX,
            acquire_timeout=self.settings.api_acquire_timeout,
        )
        self._client = Client(self.database_url, settings=client_settings)
        await self._pool.open(wait=False)
        await self._client.open()

    async def close(self) -> None:
        client, pool, self._client, self._pool = self._client, self._pool, None, None
        if client is not None:
            await client.close()
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> AsyncPool:
        """Request transactions."""
        if self._pool is None:
            raise RuntimeError("the API app is not started (run it with its lifespan)")
        return self._pool

    @property
    def client(self) -> Client:
        """Enqueue, cancel and the catalog of queues and job types."""
        if self._client is None:
            raise RuntimeError("the API app is not started (run it with its lifespan)")
        return self._client


@dataclass(slots=True)
class ApiState:
    settings: Settings
    database_url: str
    connections: Connections
    tenancy: Tenancy
    auth: AuthConfig
    limiter: RateLimiter
    stats_cache: TtlCache[QueueStats]
    metrics: ApiMetrics
    readiness: Readiness

    @property
    def pool(self) -> AsyncPool:
        return self.connections.pool

    @property
    def client(self) -> Client:
        return self.connections.client


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def _state(request: Request) -> ApiState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request.
    return get_state(request)


State = Annotated[ApiState, Depends(_state)]
