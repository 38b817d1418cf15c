"""The remaining pages in the browser: diagnostics of a waiting job (and of one waiting on its
dependencies), schedules, alerts, rate limiters, and the overview at phone width (each also saved as a
screenshot)."""

from __future__ import annotations

import re

from playwright.async_api import expect

from jobkeeper.api.auth import Role
from tests.api.support import Conn
from tests.dashboard.support import insert_job
from tests.e2e.conftest import OpenPage, Shots
from tests.fixtures import Tenants
from tests.support import declare_types


async def test_why_a_waiting_job_is_not_running(
    open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots
) -> None:
    await owner.execute("UPDATE jobkeeper.queues SET paused = true WHERE name = 'money'")
    await owner.execute("UPDATE jobkeeper.tenants SET max_concurrency = 1 WHERE id = %s", (tenants.a,))
    await insert_job(owner, tenants.a, type="payment-process", queue="money", status="processing")
    job = await insert_job(
        owner, tenants.a, type="payment-process", queue="money", payload={"orderId": "o-42"}, delay_seconds=90
    )
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto(f"/dashboard/jobs/{job}")
    diagnosis = page.locator("#diagnosis")
    for reason in (
        "Scheduled later",
        "Queue paused",
        "No worker for its queue",
        "Tenant at its concurrency cap",
    ):
        await expect(diagnosis).to_contain_text(reason)
    await shots.take(page, "job-diagnosis", full_page=True)


async def test_a_job_waiting_on_its_dependencies(
    open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots
) -> None:
    parents = [
        await insert_job(owner, tenants.a, type="ticket-mint", queue="money", status="processing"),
        await insert_job(owner, tenants.a, type="payment-process", queue="money", delay_seconds=600),
    ]
    child = await insert_job(
        owner, tenants.a, type="email-send", queue="communication", status="waiting", payload={"to": "a@b.c"}
    )
    for parent in parents:
        await owner.execute(
            "INSERT INTO jobkeeper.job_dependencies (depends_on, job_id, tenant_id) VALUES (%s, %s, %s)",
            (parent, child, tenants.a),
        )
        await owner.execute("UPDATE jobkeeper.jobs SET has_dependents = true WHERE id = %s", (parent,))
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto(f"/dashboard/jobs/{child}")
    diagnosis = page.locator("#diagnosis")
    await expect(diagnosis).to_contain_text("Waiting on 2 dependencies")
    await shots.take(page, "job-waiting-dependencies", full_page=True)
    # Each unfinished parent is a link to its own page.
    await diagnosis.get_by_role("link", name=str(parents[0])[:8]).click()
    await expect(page).to_have_url(re.compile(f"/dashboard/jobs/{parents[0]}$"))
    await expect(page.locator("#dependents")).to_contain_text(str(child)[:8])


async def test_schedules_alerts_and_limiters(
    open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots, db_url: str
) -> None:
    declare_types(db_url, "dash-sync")  # the schedule's own type, as creating it through the API requires
    await owner.execute(
        """
        INSERT INTO jobkeeper.schedules (tenant_id, name, cron, timezone, queue, job_type, payload,
                                         next_run_at)
        VALUES (%(t)s, 'nightly-report', '0 2 * * *', 'Europe/Paris', 'background', 'generate-report', '{}',
                now() + interval '5 hours'),
               (%(t)s, 'hourly-sync', '15 * * * *', 'UTC', 'background', 'dash-sync', '{}',
                now() + interval '20 minutes')
        """,
        {"t": tenants.a},
    )
    await owner.execute(
        """
        INSERT INTO jobkeeper.alert_history (tenant_id, queue, rule, severity, message)
        VALUES (%(t)s, 'money', 'failure-rate', 'critical', 'money: 12%% of jobs failed in 5 minutes'),
               (%(t)s, 'background', 'queue-depth', 'warning', 'background: 5,200 jobs waiting')
        """,
        {"t": tenants.a},
    )
    page = await open_page(Role.VENUE_ADMIN)
    await page.goto("/dashboard/schedules")
    await expect(page.locator("table.schedules tbody tr")).to_have_count(2)
    await shots.take(page, "schedules", full_page=True)
    hourly = page.locator("tr", has_text="hourly-sync")
    await hourly.get_by_role("button", name="Pause").click()
    await expect(page.locator(".notice")).to_contain_text("hourly-sync paused")
    await expect(page.locator("tr", has_text="hourly-sync")).to_contain_text("paused")
    await page.locator("tr", has_text="hourly-sync").get_by_role("button", name="Run now").click()
    await expect(page.locator("#job-status")).to_have_text("pending")

    await page.goto("/dashboard/alerts")
    await expect(page.locator("table.alerts tbody tr")).to_have_count(2)
    await shots.take(page, "alerts", full_page=True)
    await page.locator("tr", has_text="queue-depth").get_by_role("button", name="Acknowledge").click()
    await expect(page.locator("table.alerts tbody tr")).to_have_count(1)

    await page.goto("/dashboard/limiters")
    await expect(page.locator("table.limiters tbody")).to_contain_text("stripe")
    await shots.take(page, "limiters", full_page=True)


async def test_overview_at_phone_width(
    open_page: OpenPage, owner: Conn, tenants: Tenants, shots: Shots
) -> None:
    await insert_job(owner, tenants.a)
    page = await open_page(Role.ADMIN, width=390, height=844)
    await page.goto("/dashboard/")
    await expect(page.locator("#queue-background [data-count=waiting]")).to_have_text("1")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # wide tables scroll inside their box; the page itself does not
    await shots.take(page, "overview-phone", full_page=True)
