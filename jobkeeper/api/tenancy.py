"""The per-request database transaction, scoped to the caller's tenant by row-level security
(docs/api.md#tenant-isolation).

Every request that touches tenant data runs in one transaction that begins with `api_enter`:
`set_config('role', 'jobkeeper_api', true)` (SET LOCAL ROLE, a role without BYPASSRLS) and
`set_config('jobkeeper.tenant_id', <tenant from the verified token>, true)`; platform admins run as
`jobkeeper_worker`, whose policy spans all tenants. Both settings end with the transaction, so a pooled
connection never carries one request's tenant into the next. The same statement reads whether the token's
tenant exists and is active: a request of an unknown or deactivated tenant is refused (403) before any
query of its own runs.

Statements go one at a time, not in pipeline mode: with the database on the same machine a round trip
costs less CPU than a pipeline's bookkeeping, and the API's requests per second are bound by its CPU
(docs/benchmarks.md#api-transaction).

A request may run one statement `ahead` of its transaction, as a transaction of its own: the rate
limiter's take, whose row lock is then held for the statement only, not until the request's commit (every
request of one principal updates the same row, so held to the end they would run one at a time).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from jobkeeper.api import problems
from jobkeeper.api.auth import Principal
from jobkeeper.errors import DatabaseUnavailableError
from jobkeeper.store import server
from jobkeeper.store.pool import AsyncPool
from jobkeeper.store.run import AsyncConnection, AsyncDb, Steps, run

T = TypeVar("T")

TENANT_ROLE = "jobkeeper_api"
PLATFORM_ROLE = "jobkeeper_worker"


@dataclass(slots=True)
class Ahead:
    """An operation run ahead of a request's transaction, as a transaction of its own; `row` is its result
    once it ran."""

    steps: Steps[dict[str, Any] | None]
    row: dict[str, Any] | None = None


class Tx:
    """One request's transaction: `run` runs a store operation in it."""

    def __init__(
        self,
        conn: AsyncConnection,
        principal: Principal | None,
        entered: dict[str, Any],
    ) -> None:
        self.conn = conn
        self.principal = principal
        self._entered = entered

    @property
    def tenant_scope(self) -> uuid.UUID | None:
        """The tenant every query is limited to: the caller's, or None for platform admins (all tenants).
        Row-level security enforces it; queries repeat it so the planner can use tenant indexes."""
        if self.principal is None or self.principal.is_platform_admin:
            return None
        return self.principal.tenant_id

    async def run(self, steps: Steps[T]) -> T:
        """Run a store operation in the request's transaction; its errors come as jobkeeper's."""
        return await run(self.conn, steps)

    async def now(self) -> datetime:
        """The transaction's time on the database clock."""
        now: datetime = self._entered["now"]
        return now

    def check(self) -> None:
        """Raise 403 unless the caller's tenant exists and is active."""
        if self.principal is None:
            return
        if self._entered["tenant_active"] is None:
            raise problems.forbidden(f"tenant {self.principal.tenant_id} is not registered with this service")
        if not self._entered["tenant_active"]:
            raise problems.forbidden(f"tenant {self.principal.tenant_id} is deactivated")


class Tenancy:
    def __init__(self, pools: Callable[[], AsyncPool], *, acquire_timeout: float) -> None:
        self._pools = pools
        self.acquire_timeout = acquire_timeout

    @property
    def pool(self) -> AsyncPool:
        return self._pools()

    async def found(self, principal: Principal, steps: Steps[T | None], what: str, ident: object) -> T:
        """Run one store operation in a transaction of its own; no result (None, False, an empty list:
        absent or another tenant's) answers 404 "no {what} {ident}"."""
        async with self.transaction(principal) as tx:
            result = await tx.run(steps)
        if not result:
            raise problems.not_found(what, ident)
        return result

    @asynccontextmanager
    async def transaction(
        self,
        principal: Principal | None,
        *,
        synchronous_commit: bool | None = None,
        ahead: Ahead | None = None,
    ) -> AsyncIterator[Tx]:
        """A transaction as `principal` (None: the platform itself, for health and metrics).

        `synchronous_commit=False` lets a write of fast or ephemeral jobs commit asynchronously
        (docs/concepts.md#durability-tiers); None keeps the server's setting. `ahead` runs first, as a
        transaction of its own (its first row is set on it even when the request then fails).
        """
        platform = principal is None or principal.is_platform_admin
        enter = server.enter(
            role=PLATFORM_ROLE if platform else TENANT_ROLE,
            tenant_id="" if platform or principal is None else str(principal.tenant_id),
            synchronous_commit=synchronous_commit,
            principal_tenant=None if principal is None else principal.tenant_id,
        )
        acquired = False
        try:
            # The store translates the pool's errors and the commit's at the block's end.
            async with AsyncDb(self.pool, timeout=self.acquire_timeout).connection() as conn:
                acquired = True
                if ahead is not None:
                    ahead.row = await run(conn, ahead.steps)
                async with conn.transaction():
                    tx = Tx(conn, principal, await run(conn, enter))
                    tx.check()
                    yield tx
        except DatabaseUnavailableError:
            if acquired:
                raise
            raise problems.unavailable(
                f"no database connection within {self.acquire_timeout:g} s; try again shortly"
            ) from None
