"""Well-behaved handlers of the fault suite, loaded by `jobkeeper worker --import tests.fault.handlers`.

They mimic the three default queues: a money job (durable tier), a communication job (fast tier) and a
background job (ephemeral tier), plus `fault-tick` for cron schedules. Each execution is recorded, and
the effect is made exactly-once by the job's idempotency key (`tests.fault.ledger`).

The payload says how the job behaves, so that the test knows its exact expected outcome:
- `work`: seconds of work, half before the effect and half after it;
- `fail_before`: the first N attempts fail (transiently) before the effect;
- `fail_after`: the first N attempts fail after the effect (the provider charged, the answer was lost);
- `permanent`: fail permanently before the effect (dead-lettered at once);
- `expect`: the status the invariant checker expects at the end (default `completed`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobkeeper import JobContext, PermanentError, task
from tests.fault.ledger import apply_effect, operation, record_execution

RETRY_AFTER = 0.2
"""Seconds between attempts: the queues' real backoffs (2 to 10 s) would only slow the suite down."""


class TransientFault(Exception):
    """A failure worth retrying, such as a provider's 503."""


async def perform(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await record_execution(ctx)
    work = float(payload.get("work", 0.0))
    if work:
        await asyncio.sleep(work / 2)
    if ctx.attempt <= int(payload.get("fail_before", 0)):
        raise TransientFault(f"provider unavailable on attempt {ctx.attempt}")
    if payload.get("permanent"):
        raise PermanentError("declined by the provider")
    applied = await apply_effect(ctx)
    if ctx.attempt <= int(payload.get("fail_after", 0)):
        raise TransientFault(f"the provider's answer was lost on attempt {ctx.attempt}")
    if work:
        await asyncio.sleep(work / 2)
    return {"op": operation(ctx), "applied": applied}


@task("fault-money", queue="money", backoff=RETRY_AFTER)
async def money(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return await perform(payload, ctx)


@task("fault-comms", queue="communication", backoff=RETRY_AFTER)
async def communication(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return await perform(payload, ctx)


@task("fault-background", queue="background", backoff=RETRY_AFTER)
async def background(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return await perform(payload, ctx)


@task("fault-tick", queue="money", backoff=RETRY_AFTER)
async def tick(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Fired by a cron schedule: its idempotency key names the slot (`schedule:<id>:<slot>`)."""
    return await perform(payload, ctx)
