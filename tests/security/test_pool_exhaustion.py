"""Pool exhaustion (issue 10, item 4): with every connection taken, the API answers 503 with `Retry-After`
within its acquire timeout instead of hanging, keeps serving liveness, and recovers when the connections
are let go. Two real ways to run out:

- in-flight requests hold every pooled connection (blocked on a row lock another client holds);
- the server has no free connection slot for the API's login: other clients hold all of them
  (a role `CONNECTION LIMIT`, so the shared test server's own `max_connections` is left alone).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql

from jobkeeper.api.auth import Role
from jobkeeper.dashboard.session import COOKIE
from jobkeeper.server import create_app
from jobkeeper.store.pool import RECONNECT_MAX_DELAY
from tests.api.support import Conn, api_settings, assert_problem, insert_worker, running
from tests.fixtures import Tokens
from tests.support import eventually

JOBS = "/api/v1/queue/jobs"
READY = "/api/v1/queue/health/ready"
ADD = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}
ACQUIRE = 1.0
SLACK = 3.0
"""How much later than the acquire timeout a 503 may come on a busy shared machine; never a hang."""
FAILED_ATTEMPTS = 7


async def _timed(
    http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.request(method, path, **kwargs)
    return response, time.monotonic() - started


def _assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < ACQUIRE + SLACK, f"answered after {elapsed:.1f} s"


async def _waiting_on_locks(admin: psycopg.AsyncConnection[Any], database: str) -> int:
    cur = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_requests_holding_every_pooled_connection(
    make_app: Callable[..., FastAPI], tokens: Tokens, db_url: str, owner: Conn
) -> None:
    """Two requests hang on a lock held elsewhere and so hold both pooled connections: the next request
    gets 503 within the acquire timeout; once the lock goes, all of them finish and new ones are served."""
    await insert_worker(owner)
    app = make_app(pool_min=2, pool_max=2, api_acquire_timeout=ACQUIRE)
    database = urlsplit(db_url).path.lstrip("/")
    async with running(app) as http, await psycopg.AsyncConnection.connect(db_url) as locker:
        assert (await http.get(JOBS, headers=tokens.user_b)).status_code == 200
        # Another client locks tenant A's row: inserting A's jobs (their foreign key) waits for it.
        await locker.execute("SELECT 1 FROM jobkeeper.tenants WHERE id = %s FOR UPDATE", (tokens.tenants.a,))
        stuck = [asyncio.create_task(http.post(JOBS, json=ADD, headers=tokens.user_a)) for _ in range(2)]
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as watcher:

            async def both_waiting() -> bool:
                return await _waiting_on_locks(watcher, database) == 2

            await eventually(both_waiting, timeout=15, what="two requests waiting on the lock")
        response, elapsed = await _timed(http, "GET", JOBS, headers=tokens.user_b)
        _assert_unavailable(response, elapsed)
        assert elapsed >= ACQUIRE * 0.9, "it waited for a connection, as configured"
        response, elapsed = await _timed(http, "POST", JOBS, json=ADD, headers=tokens.user_b)
        _assert_unavailable(response, elapsed)
        session = tokens.headers(Role.VENUE_ADMIN, tokens.tenants.b)["Authorization"].removeprefix("Bearer ")
        http.cookies.set(COOKIE, session)
        page, elapsed = await _timed(http, "GET", "/dashboard/jobs")
        http.cookies.clear()
        assert page.status_code == 503, page.text
        assert int(page.headers["retry-after"]) >= 1
        assert elapsed < ACQUIRE + SLACK
        assert (await http.get("/health")).json() == {"status": "ok"}  # liveness needs no connection
        assert not any(task.done() for task in stuck)
        await locker.rollback()  # the other client lets go
        for task in stuck:
            assert (await asyncio.wait_for(task, 30)).status_code == 201
        assert (await http.get(JOBS, headers=tokens.user_b)).status_code == 200
        assert len((await http.get(JOBS, headers=tokens.user_a)).json()["items"]) == 2
        assert (await http.get(READY)).status_code == 200


def _as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
def limited_login(admin_url: str, db_url: str) -> Iterator[str]:
    """A login of the API's kind (member of both jobkeeper roles, not a superuser) allowed 3 connections:
    its URL on the test database."""
    name = f"jk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    role = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER CONNECTION LIMIT 3").format(role))
        conn.execute(sql.SQL("GRANT jobkeeper_api, jobkeeper_worker TO {}").format(role))
    try:
        yield _as_user(db_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


async def test_no_free_connection_slot_on_the_server(limited_login: str, tokens: Tokens, owner: Conn) -> None:
    """Other clients hold every connection the server grants the API's login: requests answer 503 with
    Retry-After within the acquire timeout, readiness says the database is unreachable, liveness stays up;
    when the other clients disconnect, the API's pool connects and requests are served again."""
    await insert_worker(owner)
    others = [await psycopg.AsyncConnection.connect(limited_login, autocommit=True) for _ in range(3)]
    with pytest.raises(psycopg.OperationalError, match="too many connections"):
        await psycopg.AsyncConnection.connect(limited_login)
    settings = api_settings(pool_min=1, pool_max=2, api_acquire_timeout=ACQUIRE, connect_timeout=2.0)
    app = create_app(settings, limited_login)
    try:
        async with running(app) as http:
            for method, path, body in (("GET", JOBS, None), ("POST", JOBS, ADD), ("GET", JOBS + "/x", None)):
                response, elapsed = await _timed(http, method, path, json=body, headers=tokens.user_a)
                if path.endswith("/x"):
                    assert_problem(response, 422)  # input is checked before a connection is needed
                    continue
                _assert_unavailable(response, elapsed)
            ready, elapsed = await _timed(http, "GET", READY)
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"]["ok"] is False
            assert elapsed < ACQUIRE + SLACK + settings.connect_timeout
            assert (await http.get("/health")).status_code == 200
            # The outage lasts until both pools have failed to connect several times (about 7 s with
            # back-off doubling from 1 s: the next attempt would be 8 s away, and ever further).
            pools = (app.state.api.pool, app.state.api.client.pool)

            async def failed_often() -> bool:
                return all(pool.get_stats().get("connections_errors", 0) >= FAILED_ATTEMPTS for pool in pools)

            await eventually(failed_often, timeout=60, what=f"{FAILED_ATTEMPTS} failed connection attempts")
            for conn in others:
                await conn.close()
            others = []
            started = time.monotonic()

            async def served() -> bool:
                listed = await http.get(JOBS, headers=tokens.user_a)
                return listed.status_code == 200

            async def added() -> bool:
                return (await http.post(JOBS, json=ADD, headers=tokens.user_a)).status_code == 201

            # Both pools come back within the longest pause between attempts, not after the back-off's.
            bound = RECONNECT_MAX_DELAY + SLACK
            await eventually(served, timeout=bound, what="requests to be served again")
            await eventually(added, timeout=bound, what="jobs to be added again")
            print(f"\nserved again {time.monotonic() - started:.1f} s after the other clients let go")
    finally:
        for conn in others:
            await conn.close()
