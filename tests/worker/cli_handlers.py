"""Handlers loaded by `jobkeeper worker --import tests.worker.cli_handlers` in the subprocess tests."""

from __future__ import annotations

import asyncio
from typing import Any

from jobkeeper import JobContext, task


@task("slow-report", queue="background")
async def slow_report(payload: dict[str, Any], ctx: JobContext) -> None:
    await asyncio.sleep(payload["seconds"])


@task("echo", queue="background")
async def echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {"echo": payload, "attempt": ctx.attempt}
