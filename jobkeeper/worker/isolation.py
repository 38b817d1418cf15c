"""Process isolation: a sync handler run in a child process that is killed on timeout or cancellation.

For CPU-bound work a thread cannot be stopped; a process can. Each attempt gets a fresh child (spawned,
so nothing of the worker's threads, sockets or event loop leaks into it). The child imports the handler
by module and qualified name, runs it, and sends back the result or a description of its exception; it
can report progress on the same pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from jobkeeper.errors import Cancel, PermanentError, Retry, Snooze
from jobkeeper.types import Job
from jobkeeper.worker.context import job_logger, progress_json


class ChildError(Exception):
    """The child's handler raised: `kind` is retry, snooze, permanent, cancel or error."""

    def __init__(self, kind: str, type_name: str, message: str, tb: str | None, arg: float = 0.0) -> None:
        super().__init__(message)
        self.kind = kind
        self.type_name = type_name
        self.message = message
        self.traceback = tb
        self.arg = arg


@dataclass
class ProcessContext:
    """The `ctx` of a handler under process isolation. Cancellation kills the process."""

    job: Job
    attempt: int
    _conn: Connection = field(repr=False)

    def __post_init__(self) -> None:
        self.logger = job_logger(self.job)

    @property
    def is_cancelled(self) -> bool:
        return False

    def set_progress(self, current: float, total: float | None = None, note: str | None = None) -> None:
        self._conn.send(("progress", progress_json(current, total, note)))


def _resolve(module: str, qualname: str) -> Callable[[Any, Any], Any]:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _describe(exc: BaseException) -> tuple[str, str, str, str, float]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    kind, arg = "error", 0.0
    if isinstance(exc, Retry):
        kind, arg = "retry", exc.after
    elif isinstance(exc, Snooze):
        kind, arg = "snooze", exc.seconds
    elif isinstance(exc, PermanentError):
        kind = "permanent"
    elif isinstance(exc, Cancel):
        kind = "cancel"
    return kind, type(exc).__name__, str(exc), tb, arg


def child_main(module: str, qualname: str, job: Job, conn: Connection) -> None:
    """Entry point of the child process."""
    try:
        handler = _resolve(module, qualname)
        result = handler(job.payload, ProcessContext(job, job.attempts, conn))
        conn.send(("ok", result))
    except BaseException as exc:
        try:
            conn.send(("raise", *_describe(exc)))
        except Exception:
            logging.getLogger(__name__).exception("could not report the handler's error")
    finally:
        conn.close()


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _receive(reader: Connection) -> Any:
    loop = asyncio.get_running_loop()
    fd = reader.fileno()
    while not reader.poll():
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _resolve_future, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
    return reader.recv()


async def run_in_process(module: str, qualname: str, job: Job, on_progress: Callable[[str], None]) -> Any:
    """Run the handler in a child process and return its result. Raises `ChildError` when the handler
    raised; cancelling this coroutine (timeout, cancellation, shutdown) kills the child."""
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=child_main,
        args=(module, qualname, job, writer),
        name=f"jobkeeper-job-{job.id}",
        daemon=True,
    )
    # Starting a spawned child writes its arguments to a pipe, which can block: not on the loop.
    started = asyncio.ensure_future(asyncio.to_thread(process.start))
    try:
        await asyncio.shield(started)
        writer.close()
        while True:
            try:
                message = await _receive(reader)
            except EOFError:
                await asyncio.to_thread(process.join, 5.0)
                raise ChildError(
                    "error",
                    "ChildProcessError",
                    f"the job's process exited with code {process.exitcode} before sending a result",
                    None,
                ) from None
            if message[0] == "progress":
                on_progress(message[1])
            elif message[0] == "ok":
                return message[1]
            else:
                _, kind, type_name, text, tb, arg = message
                raise ChildError(kind, type_name, text, tb, arg)
    finally:
        if not started.done():
            with contextlib.suppress(Exception):
                await started  # cancelled while starting: let it start, then kill it
        writer.close()
        if process.pid is not None:
            if process.is_alive():
                process.kill()
            process.join(1.0)
        reader.close()
