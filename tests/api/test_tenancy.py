"""The request transaction: role and tenant set inside it, enforced by row-level security, gone after."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from jobkeeper.api.auth import Principal, Role
from jobkeeper.api.state import ApiState
from tests.api.support import Conn, insert_job
from tests.fixtures import Tokens


async def test_a_tenant_transaction_runs_as_the_api_role_with_its_tenant(
    app: FastAPI, tokens: Tokens
) -> None:
    state: ApiState = app.state.api
    principal = Principal(subject="t", tenant_id=tokens.tenants.a, role=Role.USER)
    async with state.tenancy.transaction(principal) as tx:
        cur = await tx.conn.execute("SELECT current_user, current_setting('jobkeeper.tenant_id')")
        assert await cur.fetchone() == ("jobkeeper_api", str(tokens.tenants.a))
    admin = Principal(subject="t", tenant_id=tokens.tenants.a, role=Role.ADMIN)
    async with state.tenancy.transaction(admin) as tx:
        cur = await tx.conn.execute("SELECT current_user, current_setting('jobkeeper.tenant_id')")
        assert await cur.fetchone() == ("jobkeeper_worker", "")
    # Both settings were transaction-local: the pooled connection is itself again.
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT current_user = session_user, current_setting('jobkeeper.tenant_id', true)"
        )
        assert await cur.fetchone() in ((True, ""), (True, None))


async def test_row_level_security_holds_without_a_where_clause(
    app: FastAPI, tokens: Tokens, owner: Conn
) -> None:
    a = await insert_job(owner, tokens.tenants.a)
    await insert_job(owner, tokens.tenants.b)
    state: ApiState = app.state.api
    principal = Principal(subject="t", tenant_id=tokens.tenants.a, role=Role.USER)
    async with state.tenancy.transaction(principal) as tx:
        cur = await tx.conn.execute("SELECT id FROM jobkeeper.jobs")
        assert await cur.fetchall() == [(a,)]
        cur = await tx.conn.execute(
            "UPDATE jobkeeper.jobs SET priority = 1 WHERE tenant_id = %s RETURNING id", (tokens.tenants.b,)
        )
        assert await cur.fetchall() == []


async def test_a_failed_request_rolls_back_and_leaves_the_connection_clean(
    http: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    for _ in range(3):
        response = await http.post("/api/v1/queue/jobs/batch", json={"jobs": []}, headers=tokens.venue_a)
        assert response.status_code == 422
    state: ApiState = app.state.api
    assert state.pool.get_stats().get("requests_errors", 0) == 0
    assert (await http.get("/api/v1/queue/jobs", headers=tokens.user_b)).json()["items"] == []
