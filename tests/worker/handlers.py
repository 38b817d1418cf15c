"""Module-level handlers for the process-isolation tests: a child process imports them by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jobkeeper import PermanentError
from jobkeeper.worker import ProcessContext


def spin_forever(payload: dict[str, Any], ctx: ProcessContext) -> None:
    """CPU-bound and deaf to everything: only killing the process stops it."""
    Path(payload["pidfile"]).write_text(str(os.getpid()))
    while True:
        pass


def crunch(payload: dict[str, Any], ctx: ProcessContext) -> dict[str, Any]:
    ctx.set_progress(1, 2, "half way")
    return {"sum": sum(range(payload["n"])), "pid": os.getpid(), "attempt": ctx.attempt}


def refuse(payload: dict[str, Any], ctx: ProcessContext) -> None:
    raise PermanentError("malformed input")
