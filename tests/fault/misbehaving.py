"""Handlers that misbehave (scenario 6), loaded with `--import tests.fault.misbehaving`.

The hanging ones have a short timeout (`TIMEOUT`) so that the suite sees the worker time them out; the
leaks have a long one, since a spawned child takes seconds to start on a busy machine.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from jobkeeper import JobContext, task
from tests.fault.timeouts import TIMEOUT

_leaked: list[bytes] = []


def _leak(megabytes: int) -> int:
    _leaked.append(b"\x01" * (megabytes * 1024 * 1024))  # written, so resident (calloc'd zeros are not)
    return len(_leaked)


@task("fault-hang-process", queue="background", timeout=TIMEOUT, isolation="process", backoff=0.1)
def hang_in_process(payload: dict[str, Any], ctx: Any) -> None:
    """Ignores SIGTERM and never returns: only a kill ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1.0)


@task("fault-hang-thread", queue="background", timeout=TIMEOUT, backoff=0.1)
def hang_in_thread(payload: dict[str, Any], ctx: JobContext) -> None:
    """A sync handler stuck in a call that ignores `ctx.is_cancelled` (its thread cannot be stopped)."""
    time.sleep(float(payload["seconds"]))


@task("fault-hang-async", queue="background", timeout=TIMEOUT, backoff=0.1)
async def hang_ignoring_cancellation(payload: dict[str, Any], ctx: JobContext) -> str:
    """Swallows every cancellation until `seconds` have passed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + float(payload["seconds"])
    while loop.time() < end:
        try:
            await asyncio.sleep(end - loop.time())
        except asyncio.CancelledError:
            continue
    return "finished late"


@task("fault-leak", queue="background", timeout=60.0, backoff=0.1)
def leak(payload: dict[str, Any], ctx: JobContext) -> int:
    """Keeps `mb` megabytes alive in the worker process for good."""
    return _leak(int(payload["mb"]))


@task("fault-leak-process", queue="background", timeout=60.0, isolation="process", backoff=0.1)
def leak_in_process(payload: dict[str, Any], ctx: Any) -> int:
    """The same leak under process isolation: it dies with the child."""
    return _leak(int(payload["mb"]))


@task("fault-raise-in-finally", queue="background", timeout=TIMEOUT, backoff=0.1)
async def raise_in_finally(payload: dict[str, Any], ctx: JobContext) -> None:
    """Its cleanup raises, after a normal return or while it is being timed out."""
    try:
        await asyncio.sleep(float(payload["seconds"]))
    finally:
        raise RuntimeError("cleanup failed")  # the misbehaviour under test


@task("fault-block-loop", queue="background", timeout=TIMEOUT, backoff=0.1)
async def block_loop(payload: dict[str, Any], ctx: JobContext) -> None:
    """Sync code inside `async def`: the whole event loop stops for `block` seconds."""
    time.sleep(float(payload["block"]))  # noqa: ASYNC251 - the misbehaviour under test
    await asyncio.sleep(float(payload.get("then", 1.0)))


@task("fault-witness", queue="background", timeout=60.0, backoff=0.1)
async def witness(payload: dict[str, Any], ctx: JobContext) -> int:
    """A well-behaved long job that runs next to the misbehaving ones; it must never be rescued."""
    await asyncio.sleep(float(payload["seconds"]))
    return ctx.attempt
