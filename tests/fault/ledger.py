"""The test's own record of what handlers did, in two tables of the test database.

- `fault_executions`: one row per execution of a handler (append-only), so a job run twice shows twice.
- `fault_effects`: the effect itself, keyed by the job's idempotency key and written with
  `INSERT … ON CONFLICT DO NOTHING`, the way a provider honours an idempotency key. Each row also names
  the *operation* (`op`, set by the test in the payload): two effects for one operation would be a
  doubled charge, whatever their keys.

Imported by the handler modules inside the worker processes (no pytest here) and by the invariant checker.
"""

from __future__ import annotations

import os
from typing import Any

from psycopg_pool import AsyncConnectionPool

from jobkeeper import JobContext

SCHEMA = """
CREATE TABLE fault_executions (
    job_id       uuid NOT NULL,
    op           text NOT NULL,
    key          text NOT NULL,
    attempt      integer NOT NULL,
    pid          integer NOT NULL,
    scheduled_at timestamptz NOT NULL,
    started_at   timestamptz,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX fault_executions_job_idx ON fault_executions (job_id);
CREATE TABLE fault_effects (
    key     text PRIMARY KEY,
    op      text NOT NULL,
    job_id  uuid NOT NULL,
    attempt integer NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

APPLICATION_NAME = "fault-handler"
"""Handlers' own connections: not the worker's (`jobkeeper…`), so backend killers leave them alone."""

_pool: AsyncConnectionPool[Any] | None = None


async def pool() -> AsyncConnectionPool[Any]:
    """The worker process's pool for handler writes (created on first use, in the worker's loop)."""
    global _pool
    if _pool is None:
        _pool = AsyncConnectionPool(
            os.environ["DATABASE_URL"],
            min_size=1,
            max_size=int(os.environ.get("FAULT_HANDLER_POOL", "20")),
            kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
            check=AsyncConnectionPool.check_connection,
            timeout=10.0,
            open=False,
        )
    await _pool.open(wait=False)
    return _pool


def effect_key(ctx: JobContext) -> str:
    return ctx.job.idempotency_key or f"job:{ctx.job.id}"


def operation(ctx: JobContext) -> str:
    payload = ctx.job.payload
    if isinstance(payload, dict) and isinstance(payload.get("op"), str):
        return str(payload["op"])
    return effect_key(ctx)


async def record_execution(ctx: JobContext) -> None:
    job = ctx.job
    async with (await pool()).connection() as conn:
        await conn.execute(
            "INSERT INTO fault_executions (job_id, op, key, attempt, pid, scheduled_at, started_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                job.id,
                operation(ctx),
                effect_key(ctx),
                ctx.attempt,
                os.getpid(),
                job.scheduled_at,
                job.started_at,
            ),
        )


async def apply_effect(ctx: JobContext) -> bool:
    """The side effect, made idempotent by the job's key. True when this execution applied it."""
    async with (await pool()).connection() as conn:
        cur = await conn.execute(
            "INSERT INTO fault_effects (key, op, job_id, attempt) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (key) DO NOTHING RETURNING key",
            (effect_key(ctx), operation(ctx), ctx.job.id, ctx.attempt),
        )
        return await cur.fetchone() is not None
