"""Liveness, readiness (database, migrations, workers); 503, never a hang, when the database is away."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from jobkeeper.server import create_app
from jobkeeper.store import migrate
from tests.api.support import Conn, api_settings, assert_problem, insert_worker, running
from tests.fixtures import Tokens

READY = "/api/v1/queue/health/ready"


async def test_liveness_and_service_info(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    info = (await http.get("/api/v1/queue/")).json()
    assert (info["service"], info["api"], info["docs"]) == ("jobkeeper", "v1", "/docs")


async def test_ready_needs_a_live_worker(http: httpx.AsyncClient, owner: Conn) -> None:
    response = await http.get(READY)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert (checks["database"]["ok"], checks["migrations"]["ok"], checks["workers"]["ok"]) == (
        True,
        True,
        False,
    )
    assert "no worker heartbeat" in checks["workers"]["detail"]
    worker = await insert_worker(owner)
    response = await http.get(READY)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert (await http.get("/api/v1/queue/health")).status_code == 200
    await owner.execute(
        "UPDATE jobkeeper.workers SET heartbeat_at = now() - interval '5 minutes' WHERE id = %s", (worker,)
    )
    assert (await http.get(READY)).status_code == 503


async def test_ready_names_a_schema_behind_head(
    make_app: Callable[..., FastAPI], db_url: str, owner: Conn
) -> None:
    await insert_worker(owner)
    head = migrate.head()
    migrate.downgrade(db_url, "0002")
    try:
        async with running(make_app()) as http:
            response = await http.get(READY)
        assert response.status_code == 503
        migrations = response.json()["checks"]["migrations"]
        assert migrations == {"ok": False, "detail": f"schema at 0002, this version needs {head}"}
    finally:
        migrate.upgrade(db_url)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_database_that_is_down_answers_503_quickly(tokens: Tokens) -> None:
    url = f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing"
    app = create_app(api_settings(api_acquire_timeout=1.0, connect_timeout=1.0), url)
    async with running(app) as http:
        started = time.monotonic()
        response = await http.get(READY)
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == {"ok": False, "detail": "unreachable"}
        problem = await http.get("/api/v1/queue/jobs", headers=tokens.user_a)
        assert_problem(problem, 503)
        assert int(problem.headers["retry-after"]) >= 1
        add = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}
        assert_problem(await http.post("/api/v1/queue/jobs", json=add, headers=tokens.user_a), 503)
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200
        assert "jobkeeper_database_up 0.0" in metrics.text
        assert time.monotonic() - started < 20


async def test_pool_exhaustion_answers_503(make_app: Callable[..., FastAPI], tokens: Tokens) -> None:
    app = make_app(pool_min=1, pool_max=1, api_acquire_timeout=0.5)
    async with running(app) as http:
        pool = app.state.api.pool
        async with pool.connection():  # the only connection is taken
            response = await http.get("/api/v1/queue/jobs", headers=tokens.user_a)
        assert_problem(response, 503)
        assert response.headers["retry-after"] == "5"
        assert (await http.get("/api/v1/queue/jobs", headers=tokens.user_a)).status_code == 200


async def test_docs_and_openapi_are_served(http: httpx.AsyncClient) -> None:
    assert (await http.get("/docs")).status_code == 200
    schema = (await http.get("/openapi.json")).json()
    assert "/api/v1/queue/jobs" in schema["paths"]
    assert "Payload_PaymentProcess" in schema["components"]["schemas"]
    delay = schema["components"]["schemas"]["JobOptions"]["properties"]["delay"]
    assert "Milliseconds" in str(delay)
