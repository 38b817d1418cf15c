"""Helpers of the API tests: settings, tokens of every kind, rows arranged directly in the database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import httpx
import jwt
import psycopg
from fastapi import FastAPI

from jobkeeper import Settings

SECRET = "s" * 16 + "-test-secret-of-at-least-32-bytes"
AUDIENCE = "jobkeeper-tests"
ISSUER = "https://issuer.test"
PROBLEM = "application/problem+json"


def api_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "pool_min": 1,
        "pool_max": 4,
        "acquire_timeout": 5.0,
        "jwt_secret": SECRET,
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
        "api_acquire_timeout": 3.0,
    }
    return Settings.from_env({}, **(values | overrides))


def claims(tenant: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "tester",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
        "tenant_id": str(tenant),
        "role": "admin",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """A token with `alg: none` and no signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hmac_signed_with(payload: dict[str, Any], secret: bytes) -> str:
    """HS256 over any bytes (PyJWT refuses to sign with a PEM key: the algorithm-confusion attack)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem document of `status`; with `field`, one of its errors names it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:jobkeeper:problem:")
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    if field is not None:
        fields = [error["field"] for error in body.get("errors", [])]
        assert field in fields, (field, fields)
    return body


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `app`, with the app's start-up and shutdown run around it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobkeeper.test") as client:
            yield client


Conn = psycopg.AsyncConnection[Any]


async def inserted_id(conn: Conn, statement: LiteralString, params: Any = None) -> uuid.UUID:
    """Run an `INSERT … RETURNING id`; the new row's id."""
    row = await (await conn.execute(statement, params)).fetchone()
    assert row is not None
    ident: uuid.UUID = row[0]
    return ident


async def create_tenant(conn: Conn, slug: str, *, active: bool = True) -> uuid.UUID:
    return await inserted_id(
        conn,
        "INSERT INTO jobkeeper.tenants (name, slug, active) VALUES (%s, %s, %s) RETURNING id",
        (slug.title(), slug, active),
    )


async def insert_job(
    conn: Conn,
    tenant: uuid.UUID,
    *,
    status: str = "pending",
    queue: str = "communication",
    job_type: str = "send-sms",
    payload: dict[str, Any] | None = None,
    run_seconds: float | None = None,
    finished_ago: float = 0.0,
    attempts: int = 0,
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """A job row in any state; finished ones get started_at/completed_at `run_seconds` apart."""
    tier = {"money": "durable", "communication": "fast", "background": "ephemeral"}.get(queue, "durable")
    finished = status in ("completed", "failed", "cancelled")
    return await inserted_id(
        conn,
        """
        INSERT INTO jobkeeper.jobs (tenant_id, queue, type, payload, status, tier, max_attempts, attempts,
                                    idempotency_key, started_at, completed_at, worker_id, heartbeat_at)
        VALUES (%(tenant)s, %(queue)s, %(type)s, %(payload)s, %(status)s, %(tier)s, 3, %(attempts)s,
                %(key)s,
                CASE WHEN %(finished)s OR %(status)s = 'processing'
                     THEN now() - make_interval(secs => %(ago)s + COALESCE(%(run)s, 0)) END,
                CASE WHEN %(finished)s THEN now() - make_interval(secs => %(ago)s) END,
                CASE WHEN %(status)s = 'processing' THEN gen_random_uuid() END,
                CASE WHEN %(status)s = 'processing' THEN now() END)
        RETURNING id
        """,
        {
            "tenant": tenant,
            "queue": queue,
            "type": job_type,
            "payload": json.dumps(payload or {}),
            "status": status,
            "tier": tier,
            "attempts": attempts,
            "key": idempotency_key,
            "finished": finished,
            "ago": finished_ago,
            "run": run_seconds,
        },
    )


async def dead_letter(
    conn: Conn, tenant: uuid.UUID, *, job_type: str = "send-sms", queue: str = "communication"
) -> tuple[uuid.UUID, uuid.UUID]:
    """A job that failed for good, with its dead letter: (job id, dead letter id)."""
    payload = {"to": "+14155552671", "body": "hi"}
    job_id = await insert_job(
        conn, tenant, status="failed", queue=queue, job_type=job_type, payload=payload, attempts=3
    )
    await conn.execute(
        "UPDATE jobkeeper.jobs SET last_error = 'Boom: it broke',"
        ' errors = \'[{"type": "Boom", "message": "it broke", "attempt": 3}]\' WHERE id = %s',
        (job_id,),
    )
    dead_letter_id = await inserted_id(
        conn,
        """
        INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority,
                                                attempts, max_attempts, last_error, errors)
        VALUES (%s, %s, %s, %s, %s, 5, 3, 3, 'Boom: it broke',
                '[{"type": "Boom", "message": "it broke", "attempt": 3}]')
        RETURNING id
        """,
        (tenant, job_id, queue, job_type, json.dumps(payload)),
    )
    return job_id, dead_letter_id


async def insert_alert(
    conn: Conn, tenant: uuid.UUID | None, *, severity: str = "warning", rule: str = "queue-depth"
) -> uuid.UUID:
    return await inserted_id(
        conn,
        """
        INSERT INTO jobkeeper.alert_history (tenant_id, queue, rule, severity, message, deliveries)
        VALUES (%s, 'money', %s, %s, 'too many waiting jobs', '[{"channel": "webhook", "ok": true}]')
        RETURNING id
        """,
        (tenant, rule, severity),
    )


async def insert_worker(conn: Conn) -> uuid.UUID:
    return await inserted_id(
        conn,
        "INSERT INTO jobkeeper.workers (hostname, pid, concurrency) VALUES ('test', 4242, 1) RETURNING id",
    )


async def create_queue(conn: Conn, name: str, tenant: uuid.UUID | None) -> None:
    """A durable queue owned by `tenant` (None: shared)."""
    await conn.execute(
        "INSERT INTO jobkeeper.queues (name, tenant_id, tier, max_attempts, backoff, backoff_base_seconds,"
        " backoff_max_seconds, timeout_seconds, default_priority)"
        " VALUES (%s, %s, 'durable', 3, 'fixed', 1, 1, 60, 5)",
        (name, tenant),
    )


async def declare_types(http: httpx.AsyncClient, admin: dict[str, str], *names: str) -> None:
    """Make job types of the test's own known, as a platform admin does before their worker runs."""
    for name in names:
        response = await http.post("/api/v1/queue/types", json={"name": name}, headers=admin)
        assert response.status_code in (200, 201), response.text
