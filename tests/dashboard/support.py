"""Helpers of the dashboard tests: tokens and session cookies, rows arranged directly in the database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from jobkeeper import Settings
from jobkeeper.api.auth import Role, mint_token
from jobkeeper.dashboard import session
from tests.api.support import Conn, inserted_id

COOKIE = session.COOKIE


def token(settings: Settings, role: Role, tenant: uuid.UUID, subject: str = "") -> str:
    return mint_token(
        settings, role=role, tenant_id=tenant, subject=subject or f"{role.value}-tester", ttl_seconds=600
    )


def csrf(session_token: str) -> str:
    return session.csrf_token(session_token)


async def insert_job(
    conn: Conn,
    tenant: uuid.UUID,
    *,
    type: str = "dash-task",
    queue: str = "background",
    payload: dict[str, Any] | None = None,
    status: str = "pending",
    attempts: int = 0,
    max_attempts: int = 3,
    errors: list[dict[str, Any]] | None = None,
    delay_seconds: float = 0.0,
) -> uuid.UUID:
    finished = status in ("completed", "failed", "cancelled")
    return await inserted_id(
        conn,
        """
        INSERT INTO jobkeeper.jobs (tenant_id, queue, type, payload, tier, status, attempts, max_attempts,
                                    errors, last_error, scheduled_at, started_at, completed_at)
        SELECT %(tenant)s, q.name, %(type)s, %(payload)s::jsonb, q.tier, %(status)s, %(attempts)s,
               %(max_attempts)s, %(errors)s::jsonb, %(last_error)s,
               now() + make_interval(secs => %(delay)s),
               CASE WHEN %(finished)s OR %(status)s = 'processing' THEN now() END,
               CASE WHEN %(finished)s THEN now() END
        FROM jobkeeper.queues q WHERE q.name = %(queue)s
        RETURNING id
        """,
        {
            "tenant": tenant,
            "type": type,
            "queue": queue,
            "payload": json.dumps(payload or {}),
            "status": status,
            "attempts": attempts,
            "max_attempts": max_attempts,
            "errors": json.dumps(errors or []),
            "last_error": (f"{errors[-1]['type']}: {errors[-1]['message']}" if errors else None),
            "delay": delay_seconds,
            "finished": finished,
        },
    )


def attempt_error(attempt: int, message: str = "card declined") -> dict[str, Any]:
    return {
        "type": "PaymentError",
        "message": message,
        "traceback": (
            f'Traceback (most recent call last):\n  File "pay.py", line {attempt}\nPaymentError: {message}'
        ),
        "at": (datetime.now(UTC) + timedelta(milliseconds=attempt)).isoformat(),
        "attempt": attempt,
    }


async def insert_dead_letter(
    conn: Conn,
    tenant: uuid.UUID,
    *,
    type: str = "dash-task",
    queue: str = "background",
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    """A failed job and its dead letter, as the worker leaves them."""
    errors = [attempt_error(1)]
    job = await insert_job(
        conn,
        tenant,
        type=type,
        queue=queue,
        payload=payload,
        status="failed",
        attempts=1,
        max_attempts=1,
        errors=errors,
    )
    return await inserted_id(
        conn,
        """
        INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority,
                                                attempts, max_attempts, last_error, errors, failed_at)
        SELECT j.tenant_id, j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts,
               j.last_error, j.errors, now()
        FROM jobkeeper.jobs j WHERE j.id = %s
        RETURNING id
        """,
        (job,),
    )
