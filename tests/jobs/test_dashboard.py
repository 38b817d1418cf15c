"""The job page over HTTP with a real worker: progress, the timeline across manual retries, attempts
numbered over every run, one time format."""

from __future__ import annotations

import re
import uuid
from typing import Any

from jobkeeper import Client, JobContext, Retry
from jobkeeper.worker import Registry
from tests.api.support import Conn
from tests.dashboard.conftest import Browser, SignIn, WorkerFactory
from tests.dashboard.conftest import make_worker as make_worker
from tests.dashboard.conftest import sign_in as sign_in
from tests.dashboard.support import attempt_error, insert_job
from tests.fixtures import Tenants
from tests.fixtures import app as app
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.worker.helpers import wait_for_status

RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def timeline(page: str) -> list[str]:
    section = page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return [re.sub(r"\s+", " ", item).strip() for item in re.findall(r"</time>(.*?)</li>", section, re.S)]


def attempt_numbers(page: str) -> list[str]:
    return re.findall(r"<strong>Attempt (\d+)</strong>", page)


async def fail_twice(owner: Conn, browser: Browser, job: uuid.UUID, *, retry_first: bool) -> dict[str, Any]:
    """Retry the job by hand first if asked, then wait for its (two) attempts to fail it."""
    if retry_first:
        response = await browser.post(f"/dashboard/jobs/{job}/retry", data={"csrf_token": browser.csrf})
        assert response.status_code == 303
    return await wait_for_status(owner, job, "failed")


async def test_a_job_retried_by_hand_shows_every_run_in_order(
    client: Client, owner: Conn, sign_in: SignIn, tenants: Tenants, make_worker: WorkerFactory
) -> None:
    registry = Registry()

    @registry.task("flaky-task")
    async def flaky(payload: Any, ctx: JobContext) -> None:
        # The last attempt asks for a late retry: the job fails, and must not look due an hour from now.
        raise Retry(after=3600.0 if ctx.attempt == ctx.job.max_attempts else 0.0, reason="upstream down")

    browser = sign_in()
    async with make_worker(registry):
        enqueued = await client.enqueue("flaky-task", {}, max_attempts=2, tenant_id=tenants.a)
        job = enqueued.id
        first = await fail_twice(owner, browser, job, retry_first=False)
        assert first["scheduled_at"] <= first["completed_at"]  # a finished job is never due again
        second = await fail_twice(owner, browser, job, retry_first=True)
    assert second["scheduled_at"] <= second["completed_at"]

    page = (await browser.get(f"/dashboard/jobs/{job}")).text
    assert timeline(page) == [
        "enqueued",
        "attempt 1 failed: Retry",
        "attempt 2 failed: Retry",
        "failed",
        "moved to dead letters",
        "retried by hand: run 2 starts",
        "attempt 3 failed: Retry",
        "started (attempt 4)",
        "attempt 4 failed: Retry",
        "failed",
        "moved to dead letters",
    ]
    assert attempt_numbers(page) == ["4", "3", "2", "1"]
    assert "(run 2, attempt 2)" in page
    assert "(run 2, attempt 1)" in page
    assert '2 of 2 <span class="muted">in run 2 (retried by hand; 4 in all)</span>' in page
    assert not RAW_ISO.search(page.split('id="payload"', 1)[1]), "a raw ISO time on the page"
    assert "<dt>Scheduled</dt>" not in page  # finished: nothing is due


async def test_attempt_times_use_the_page_format(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    errors = [attempt_error(1), attempt_error(2)]
    job = await insert_job(owner, tenants.a, status="failed", attempts=2, max_attempts=2, errors=errors)
    page = (await sign_in().get(f"/dashboard/jobs/{job}")).text
    attempts = page.split('id="attempts"', 1)[1]
    assert len(re.findall(r"<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>", attempts)) == 2
    assert not RAW_ISO.search(attempts)
