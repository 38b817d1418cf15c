"""A real worker's lines about a job, in JSON: the handler's `ctx.logger` and the worker's own warning."""

from __future__ import annotations

import io
import json
from typing import Any

import psycopg

from jobkeeper import Client, JobContext, Settings, Worker
from jobkeeper.logs import JOB_FIELDS, configure_logging
from jobkeeper.worker import Registry
from tests.payloads import PHONE, VALID
from tests.support import eventually


async def test_every_line_about_a_job_carries_its_id_queue_type_attempt_and_tenant(
    client: Client, db_url: str, settings: Settings
) -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({}, log_format="json"), stream=stream)
    registry = Registry()

    @registry.task("send-sms")
    async def flaky(payload: Any, ctx: JobContext) -> None:
        ctx.logger.info("calling the provider for %s", payload["to"])
        raise ConnectionError("provider down")

    job = await client.enqueue("send-sms", VALID["send-sms"])
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as db:

        async def retried() -> bool:
            cur = await db.execute("SELECT attempts, status FROM jobkeeper.jobs WHERE id = %s", (job.id,))
            row = await cur.fetchone()
            return row == (1, "pending")

        worker = Worker(
            db_url, settings=settings, registry=registry, poll_interval=0.05, shutdown_timeout=0.0
        )
        async with worker:
            await eventually(retried, what="the first attempt to fail")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about_job = [line for line in lines if line.get("job_id") == str(job.id)]
    assert [line["level"] for line in about_job] == ["info", "warning"]
    assert about_job[0]["message"].endswith(f"calling the provider for {PHONE}")
    assert "ConnectionError: provider down" in about_job[1]["message"]
    for line in about_job:
        assert {key: line[key] for key in JOB_FIELDS} == {
            "job_id": str(job.id),
            "queue": "communication",
            "job_type": "send-sms",
            "attempt": 1,
            "tenant_id": str(job.tenant_id),
        }
    # No per-job INFO line of the worker's own: the only info line about the job is the handler's.
    assert all(line["logger"] == "jobkeeper.job" for line in about_job)
