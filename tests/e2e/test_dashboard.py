"""The dashboard in headless Chromium: the flows an operator relies on, end to end against a real database
and a real worker."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import expect

from jobkeeper import Settings, Worker
from jobkeeper.api.auth import Role
from jobkeeper.worker import Registry
from tests.api.support import Conn
from tests.dashboard.support import attempt_error, insert_dead_letter, insert_job, token
from tests.e2e.conftest import OpenPage, Shots
from tests.fixtures import Tenants

StartWorker = Callable[[Registry], Awaitable[Worker]]
SLOW = 20_000  # ms: a worker's claim and the page's next poll


async def test_sign_in_with_a_token(
    open_page: OpenPage, settings: Settings, tenants: Tenants, shots: Shots
) -> None:
    page = await open_page(role=None)
    await page.goto("/dashboard/jobs")
    await expect(page).to_have_url(__import__("re").compile(r"/dashboard/sign-in\?next="))
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shots.take(page, "sign-in")
    await page.get_by_label("Token").fill(token(settings, Role.VENUE_ADMIN, tenants.a, "ops@tenant-a"))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await expect(page.locator(".who")).to_contain_text("ops@tenant-a")
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "jobkeeper_session")
    assert session.get("httpOnly") is True
    assert session.get("sameSite") == "Strict"


async def test_queue_counts_change_as_jobs_run(
    open_page: OpenPage, owner: Conn, tenants: Tenants, worker: StartWorker, shots: Shots
) -> None:
    for n in range(3):
        await insert_job(owner, tenants.a, type="dash-ok", payload={"n": n})
    await owner.execute(
        """
        INSERT INTO jobkeeper.queue_metrics (queue, tenant_id, captured_at, waiting, scheduled, running,
                                             completed, failed, dead, throughput_per_minute)
        SELECT 'background', NULL, now() - make_interval(mins => 60 - i), 0, 0, 0, 20 + (i * 7) % 13,
               (i * 5) % 4, 0, (20 + (i * 7) % 13) * 60.0 / 60
        FROM generate_series(1, 59) AS i
        """
    )
    page = await open_page(Role.ADMIN)
    await page.goto("/dashboard/")
    row = page.locator("#queue-background")
    await expect(row.locator("[data-count=waiting]")).to_have_text("3")
    await expect(row.locator("[data-count=completed]")).to_have_text("0")
    await shots.take(page, "overview", full_page=True)

    registry = Registry()

    @registry.task("dash-ok", queue="background")
    def ok(payload: Any, ctx: Any) -> dict[str, Any]:
        return {"doubled": payload["n"] * 2}

    await worker(registry)
    await expect(row.locator("[data-count=completed]")).to_have_text("3", timeout=SLOW)
    await expect(row.locator("[data-count=waiting]")).to_have_text("0")
    await expect(page.locator("#total-workers")).to_have_text("1")


async def test_filter_jobs_by_a_payload_field(
    open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots
) -> None:
    for order in ("o-1001", "o-1002", "o-1003"):
        await insert_job(owner, tenants.a, type="payment-process", queue="money", payload={"orderId": order})
    await insert_job(owner, tenants.a, status="failed", errors=[attempt_error(1)], payload={"orderId": "o-9"})
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto("/dashboard/jobs")
    await expect(page.locator("table.jobs tbody tr")).to_have_count(4)
    await shots.take(page, "jobs", full_page=True)
    await page.get_by_label("Payload field").fill("orderId")
    await page.get_by_label("equals").fill("o-1002")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    await expect(page.locator("table.jobs tbody")).to_contain_text("payment-process")
    assert "field=orderId" in page.url
    await page.locator("table.jobs tbody a").first.click()
    await expect(page.locator("#payload")).to_contain_text('"orderId": "o-1002"')


async def test_open_a_jobs_attempts(open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots) -> None:
    job = await insert_job(
        owner,
        tenants.a,
        type="payment-process",
        queue="money",
        payload={"orderId": "o-7", "amount": 1250},
        status="failed",
        attempts=2,
        max_attempts=2,
        errors=[attempt_error(1, "gateway timeout"), attempt_error(2, "card declined")],
    )
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto(f"/dashboard/jobs/{job}")
    await expect(page.locator("#job-status")).to_have_text("failed")
    attempts = page.locator("#attempts details")
    await expect(attempts).to_have_count(2)
    await expect(attempts.nth(0).locator("pre.traceback")).to_contain_text("PaymentError: card declined")
    await expect(attempts.nth(1).locator("pre.traceback")).to_be_hidden()
    await attempts.nth(1).locator("summary").focus()
    await page.keyboard.press("Enter")  # keyboard opens it
    await expect(attempts.nth(1).locator("pre.traceback")).to_contain_text("gateway timeout")
    await shots.take(page, "job", full_page=True)


async def test_retry_a_failed_job_and_see_it_complete(
    open_page: OpenPage, owner: Conn, tenants: Tenants, worker: StartWorker
) -> None:
    failing = {"on": True}
    registry = Registry()

    @registry.task("dash-flaky", queue="background")
    def flaky(payload: Any, ctx: Any) -> str:
        if failing["on"]:
            raise RuntimeError("upstream is down")
        return "done"

    job = await insert_job(owner, tenants.a, type="dash-flaky", max_attempts=1)
    await worker(registry)
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto(f"/dashboard/jobs/{job}")
    await expect(page.locator("#job-status")).to_have_text("failed", timeout=SLOW)
    failing["on"] = False
    await page.get_by_role("button", name="Retry").click()
    await expect(page.locator(".notice")).to_contain_text("retried")
    await expect(page.locator("#job-status")).to_have_text("completed", timeout=SLOW)
    await expect(page.locator("#result")).to_contain_text('"done"')


async def test_bulk_replay_dead_letters(
    open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots
) -> None:
    for n in range(3):
        await insert_dead_letter(owner, tenants.a, type="send-email", queue="communication", payload={"n": n})
    await insert_dead_letter(owner, tenants.b, payload={"other": True})  # another tenant's: not replayed
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto("/dashboard/dead-letters")
    await expect(page.locator("table.letters tbody tr")).to_have_count(3)
    await shots.take(page, "dead-letters", full_page=True)
    await page.get_by_role("link", name="Replay all matching…").click()
    await expect(page.locator("#confirm-count")).to_have_text("3")
    await shots.take(page, "confirm-replay")
    await page.get_by_role("button", name="Replay 3 dead letters").click()
    await expect(page.locator(".notice")).to_have_text("replayed 3 dead letters")
    await expect(page.locator("table.letters tbody")).to_contain_text("as job")
    row = await (
        await owner.execute(
            "SELECT count(*) FILTER (WHERE replayed_at IS NOT NULL), count(*) FROM jobkeeper.dead_letter_jobs"
        )
    ).fetchone()
    assert row == (3, 4)


async def test_a_venue_admin_cannot_see_another_tenants_job(
    open_page: OpenPage, owner: Conn, tenants: Tenants
) -> None:
    theirs = await insert_job(owner, tenants.b, payload={"secret": "tenant-b"})
    ours = await insert_job(owner, tenants.a, payload={"mine": True})
    page = await open_page(Role.VENUE_ADMIN, tenants.a)
    response = await page.goto(f"/dashboard/jobs/{theirs}")
    assert response is not None
    assert response.status == 404
    await expect(page.get_by_role("heading")).to_contain_text("404")
    await page.goto("/dashboard/jobs")
    await expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    await expect(page.locator("table.jobs tbody")).to_contain_text(str(ours)[:8])
    await expect(page.locator("body")).not_to_contain_text(str(theirs)[:8])
    forbidden = await page.goto(f"/dashboard/jobs?tenant={tenants.b}")
    assert forbidden is not None
    assert forbidden.status == 403


async def test_a_forged_action_without_the_csrf_token_is_rejected(
    open_page: OpenPage, owner: Conn, tenants: Tenants
) -> None:
    job = await insert_job(owner, tenants.a, status="failed", errors=[attempt_error(1)])
    page = await open_page(Role.ADMIN)
    await page.goto(f"/dashboard/jobs/{job}")  # signed in, with the session cookie
    form = {"headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    missing = await page.request.post(f"/dashboard/jobs/{job}/retry", data="", **form)  # type: ignore[arg-type]
    assert missing.status == 403
    wrong = await page.request.post(
        f"/dashboard/jobs/{job}/retry",
        data="csrf_token=" + "0" * 64,
        **form,  # type: ignore[arg-type]
    )
    assert wrong.status == 403
    assert "CSRF" in await wrong.text()
    # A form another page builds (say, injected) posts without the token too.
    status = await page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({x: '1'})})).status""",
        f"/dashboard/jobs/{job}/retry",
    )
    assert status == 403
    await page.reload()
    await expect(page.locator("#job-status")).to_have_text("failed")


async def test_a_script_in_a_payload_is_rendered_harmless(
    open_page: OpenPage, owner: Conn, tenants: Tenants
) -> None:
    payload = {
        "note": "<script>window.__pwned = 1</script>",
        "img": '<img src=x onerror="window.__pwned = 2">',
        "<b>key</b>": "\"'><svg onload=window.__pwned=3>",
    }
    job = await insert_job(
        owner,
        tenants.a,
        type="<script>window.__pwned=4</script>",
        payload=payload,
        status="failed",
        errors=[
            {
                "type": "<i>Err</i>",
                "message": "<script>window.__pwned=5</script>",
                "traceback": "<b>tb</b>",
                "at": "2026-01-01T00:00:00+00:00",
                "attempt": 1,
            }
        ],
    )
    page = await open_page(Role.ADMIN)
    for path in (f"/dashboard/jobs/{job}", "/dashboard/jobs", "/dashboard/"):
        await page.goto(path)
        await expect(page.locator("main")).to_be_visible()
        assert await page.evaluate("typeof window.__pwned") == "undefined", path
    await page.goto(f"/dashboard/jobs/{job}")
    await expect(page.locator("#payload")).to_contain_text("<script>window.__pwned = 1</script>")
    assert await page.locator("main script, main img, main svg[onload]").count() == 0
    stored = json.loads(await page.locator("#payload").inner_text())
    assert stored == payload  # shown verbatim, as text
