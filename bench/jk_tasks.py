"""No-op handlers for the benchmarks, one per tier, loaded by `jobkeeper worker --import jk_tasks`.

The queues are the seeded ones: `money` (durable, tier 1), `communication` (fast, tier 2) and
`background` (ephemeral, tier 3).
"""

from __future__ import annotations

from typing import Any

from jobkeeper import JobContext, task

TYPES = {"durable": "bench-noop", "fast": "bench-noop-fast", "ephemeral": "bench-noop-ephemeral"}
QUEUES = {"durable": "money", "fast": "communication", "ephemeral": "background"}


@task(TYPES["durable"], queue=QUEUES["durable"])
async def noop_durable(payload: Any, ctx: JobContext) -> None:
    return None


@task(TYPES["fast"], queue=QUEUES["fast"])
async def noop_fast(payload: Any, ctx: JobContext) -> None:
    return None


@task(TYPES["ephemeral"], queue=QUEUES["ephemeral"])
async def noop_ephemeral(payload: Any, ctx: JobContext) -> None:
    return None
