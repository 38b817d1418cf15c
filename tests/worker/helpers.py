"""Helpers of the worker tests: reading job rows, waiting for them to reach a state, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.rows import dict_row

from tests.support import eventually

Conn = psycopg.AsyncConnection[Any]


async def job_row(db: Conn, job_id: uuid.UUID) -> dict[str, Any]:
    cur = db.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM jobkeeper.jobs WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    assert row is not None, f"no job {job_id}"
    return row


async def wait_for_status(
    db: Conn, job_id: uuid.UUID, *statuses: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Wait until the job has one of `statuses`; return its row."""
    row: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal row
        row = await job_row(db, job_id)
        return row["status"] in statuses

    await eventually(reached, timeout=timeout, what=f"job {job_id} to become {'/'.join(statuses)}")
    return row


async def wait_for_all(db: Conn, ids: list[uuid.UUID], status: str, *, timeout: float = 15.0) -> None:
    async def done() -> bool:
        cur = await db.execute(
            "SELECT count(*) FROM jobkeeper.jobs WHERE id = ANY(%s) AND status = %s", (ids, status)
        )
        row = await cur.fetchone()
        return row is not None and row[0] == len(ids)

    await eventually(done, timeout=timeout, what=f"{len(ids)} jobs to become {status}")


async def db_now(db: Conn) -> datetime:
    cur = await db.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def dead_letter(db: Conn, job_id: uuid.UUID) -> dict[str, Any] | None:
    cur = db.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM jobkeeper.dead_letter_jobs WHERE job_id = %s", (job_id,))
    return await cur.fetchone()


async def wait_for_row(
    db: Conn, job_id: uuid.UUID, check: Callable[[dict[str, Any]], bool], *, what: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Wait until `check(row)` holds for the job's row; return the row."""
    row: dict[str, Any] = {}

    async def holds() -> bool:
        nonlocal row
        row = await job_row(db, job_id)
        return check(row)

    await eventually(holds, timeout=timeout, what=what)
    return row


ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def worker_process(
    db_url: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """`jobkeeper worker ARGS…` in a child process on the test's database; yields it and its stderr
    (a file, so that a chatty child never blocks on a full pipe). Killed on exit if still running."""
    environ = {
        **os.environ,
        "DATABASE_URL": db_url,
        "JOBKEEPER_POLL_INTERVAL": "0.05",
        "PYTHONPATH": str(ROOT),
    }
    environ.pop("JOBKEEPER_TEST_DATABASE_URL", None)
    environ.update(env or {})
    command = [sys.executable, "-c", "from jobkeeper.cli import main; main()", "worker", *args]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            yield process, stderr
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def output(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode(errors="replace")
