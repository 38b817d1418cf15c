"""Handlers of the crash test, loaded by `jobkeeper worker --import tests.worker.crash_handlers`.

`record-effect` performs its effect keyed by the job's idempotency key, the way a payment handler passes
the key to its provider: a re-run after a crash finds the effect done and does not repeat it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg

from jobkeeper import JobContext, task

_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        _local.conn = conn
    return conn


@task("record-effect", queue="money")
def record_effect(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    conn = _connection()
    key = ctx.job.idempotency_key
    conn.execute(
        "INSERT INTO runs (key, n) VALUES (%s, 1) ON CONFLICT (key) DO UPDATE SET n = runs.n + 1", (key,)
    )
    conn.execute("INSERT INTO effects (key) VALUES (%s) ON CONFLICT (key) DO NOTHING", (key,))
    time.sleep(payload["seconds"])  # the rest of the work: the crash lands here for some jobs
    return {"key": key}
