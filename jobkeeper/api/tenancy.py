"""The per-request database transaction, scoped to the caller's tenant by row-level security (DESIGN §8).

Every request that touches tenant data runs in one transaction that begins with `api_enter`:
`set_config('role', 'jobkeeper_api', true)` (SET LOCAL ROLE, a role without BYPASSRLS) and
`set_config('jobkeeper.tenant_id', <tenant from the verified token>, true)`; platform admins run as
`jobkeeper_worker`, whose policy spans all tenants. Both settings end with the transaction, so a pooled
connection never carries one request's tenant into the next.

The connection is in pipeline mode: BEGIN, the two settings, the tenant check and the request's first
query travel to the server together and come back in one round trip. The tenant check (the token's tenant
exists and is active) is read when the first result is, and always before commit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jobkeeper.api import problems
from jobkeeper.api.auth import Principal
from jobkeeper.store.queries import query

TENANT_ROLE = "jobkeeper_api"
PLATFORM_ROLE = "jobkeeper_worker"


class Tx:
    """One request's transaction. Query by name; rows come back as dicts."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        principal: Principal | None,
        entered: psycopg.AsyncCursor[dict[str, Any]],
        status: psycopg.AsyncCursor[dict[str, Any]] | None,
    ) -> None:
        self.conn = conn
        self.principal = principal
        self._entered = entered
        self._status = status
        self._now: datetime | None = None

    @property
    def tenant_scope(self) -> uuid.UUID | None:
        """The tenant every query is limited to: the caller's, or None for platform admins (all tenants).
        Row-level security enforces it; queries repeat it so the planner can use tenant indexes."""
        if self.principal is None or self.principal.is_platform_admin:
            return None
        return self.principal.tenant_id

    async def rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.conn.cursor(row_factory=dict_row)
        await cur.execute(query(name), params or {})
        await self.check()
        return await cur.fetchall()

    async def batch(self, *statements: tuple[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Several queries sent together (one round trip in pipeline mode); their rows in order."""
        cursors = []
        for name, params in statements:
            cur = self.conn.cursor(row_factory=dict_row)
            await cur.execute(query(name), params)
            cursors.append(cur)
        await self.check()
        return [await cur.fetchall() for cur in cursors]

    async def row(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        found = await self.rows(name, params)
        return found[0] if found else None

    async def now(self) -> datetime:
        """The transaction's time on the database clock."""
        if self._now is None:
            entered = await self._entered.fetchone()
            assert entered is not None
            self._now = entered["now"]
        return self._now

    async def check(self) -> None:
        """Raise 403 unless the caller's tenant exists and is active (once per transaction)."""
        status, self._status = self._status, None
        if status is None or self.principal is None:
            return
        row = await status.fetchone()
        if row is None:
            raise problems.forbidden(f"tenant {self.principal.tenant_id} is not registered with this service")
        if not row["active"]:
            raise problems.forbidden(f"tenant {self.principal.tenant_id} is deactivated")


class Tenancy:
    def __init__(self, pools: Callable[[], AsyncConnectionPool[Any]], *, acquire_timeout: float) -> None:
        self._pools = pools
        self.acquire_timeout = acquire_timeout

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        return self._pools()

    @asynccontextmanager
    async def transaction(
        self, principal: Principal | None, *, synchronous_commit: bool | None = None
    ) -> AsyncIterator[Tx]:
        """A transaction as `principal` (None: the platform itself, for health and metrics).

        `synchronous_commit=False` lets a write of fast or ephemeral jobs commit asynchronously (DESIGN §2);
        None keeps the server's setting.
        """
        platform = principal is None or principal.is_platform_admin
        params = {
            "role": PLATFORM_ROLE if platform else TENANT_ROLE,
            "tenant_id": "" if platform or principal is None else str(principal.tenant_id),
            "synchronous_commit": None
            if synchronous_commit is None
            else ("on" if synchronous_commit else "off"),
        }
        try:
            async with (
                self.pool.connection(timeout=self.acquire_timeout) as conn,
                conn.pipeline(),
                conn.transaction(),
            ):
                entered = conn.cursor(row_factory=dict_row)
                await entered.execute(query("api_enter"), params)
                status: psycopg.AsyncCursor[dict[str, Any]] | None = None
                if principal is not None:
                    status = conn.cursor(row_factory=dict_row)
                    await status.execute(query("api_tenant_status"), {"tenant_id": principal.tenant_id})
                tx = Tx(conn, principal, entered, status)
                yield tx
                await tx.check()
        except PoolTimeout:
            raise problems.unavailable(
                f"no database connection within {self.acquire_timeout:g} s; try again shortly"
            ) from None
