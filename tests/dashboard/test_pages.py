"""Every dashboard page and action over HTTP (ASGI, no browser): roles, tenancy, CSRF, escaping."""

from __future__ import annotations

import re

import httpx

from jobkeeper.api.auth import Role
from tests.api.support import Conn
from tests.dashboard.conftest import SignIn
from tests.dashboard.support import attempt_error, insert_dead_letter, insert_job
from tests.fixtures import Tenants


async def test_pages_need_a_session(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/dashboard/jobs?status=failed")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/sign-in?next=")
    fragment = await anonymous.get("/dashboard/fragments/overview", headers={"X-Requested-With": "fetch"})
    assert fragment.status_code == 401


async def test_sign_in_sets_a_strict_http_only_cookie(
    anonymous: httpx.AsyncClient, settings: object, tenants: Tenants
) -> None:
    from jobkeeper import Settings
    from tests.dashboard.support import token

    assert isinstance(settings, Settings)
    form = await anonymous.get("/dashboard/sign-in")
    assert form.status_code == 200
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    response = await anonymous.post(
        "/dashboard/sign-in",
        data={
            "nonce": nonce.group(1),
            "token": token(settings, Role.ADMIN, tenants.a),
            "next": "/dashboard/jobs",
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/jobs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP here; TLS adds Secure
    assert (await anonymous.get("/dashboard/")).status_code == 200


async def test_sign_in_rejects_a_bad_token_and_a_missing_nonce(anonymous: httpx.AsyncClient) -> None:
    form = await anonymous.get("/dashboard/sign-in")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    bad = await anonymous.post("/dashboard/sign-in", data={"nonce": nonce.group(1), "token": "not-a-jwt"})
    assert bad.status_code == 401
    assert "malformed" in bad.text
    forged = await anonymous.post("/dashboard/sign-in", data={"nonce": "guess", "token": "x"})
    assert forged.status_code == 403


async def test_overview_lists_queues_with_counts(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    await insert_job(owner, tenants.a)
    await insert_job(owner, tenants.a, status="failed", errors=[attempt_error(1)])
    client = sign_in(Role.ADMIN)
    page = await client.get("/dashboard/")
    assert page.status_code == 200
    assert 'id="queue-background"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    fragment = await client.get("/dashboard/fragments/overview")
    assert 'data-count="waiting">1<' in fragment.text
    assert 'data-count="failed">1<' in fragment.text


async def test_every_read_page_renders(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    job = await insert_job(owner, tenants.a, payload={"orderId": "o-1"})
    letter = await insert_dead_letter(owner, tenants.a)
    client = sign_in(Role.VENUE_ADMIN)
    for path in (
        "/dashboard/",
        "/dashboard/jobs",
        "/dashboard/jobs?status=pending&field=orderId&value=o-1",
        f"/dashboard/jobs/{job}",
        f"/dashboard/fragments/jobs/{job}",
        "/dashboard/dead-letters",
        f"/dashboard/dead-letters/{letter}",
        "/dashboard/dead-letters/confirm?action=replay",
        "/dashboard/jobs/bulk?action=retry&status=failed",
        "/dashboard/schedules",
        "/dashboard/alerts?show=all",
        "/dashboard/limiters",
        "/dashboard/fragments/limiters",
    ):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:500])


async def test_actions_need_the_csrf_token(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    job = await insert_job(owner, tenants.a, status="failed", errors=[attempt_error(1)])
    client = sign_in(Role.ADMIN)
    for data in ({}, {"csrf_token": "0" * 64}):
        response = await client.post(f"/dashboard/jobs/{job}/retry", data=data)
        assert response.status_code == 403
    response = await client.post(f"/dashboard/jobs/{job}/retry", data={"csrf_token": client.csrf})
    assert response.status_code == 303
    status = await (await owner.execute("SELECT status FROM jobkeeper.jobs WHERE id = %s", (job,))).fetchone()
    assert status == ("pending",)


async def test_plain_users_read_but_do_not_act(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    job = await insert_job(owner, tenants.a, status="failed", errors=[attempt_error(1)])
    client = sign_in(Role.USER)
    page = await client.get(f"/dashboard/jobs/{job}")
    assert page.status_code == 200
    assert "/retry" not in page.text
    response = await client.post(f"/dashboard/jobs/{job}/retry", data={"csrf_token": client.csrf})
    assert response.status_code == 403
    venue = sign_in(Role.VENUE_ADMIN)
    paused = await venue.post("/dashboard/queues/background/pause", data={"csrf_token": venue.csrf})
    assert paused.status_code == 403  # pausing a shared queue is for platform admins, as in the API
    admin = sign_in(Role.ADMIN)
    paused = await admin.post("/dashboard/queues/background/pause", data={"csrf_token": admin.csrf})
    assert paused.status_code == 303


async def test_bulk_retry_touches_only_the_filter_and_the_tenant(
    sign_in: SignIn, owner: Conn, tenants: Tenants
) -> None:
    for order in ("o-1", "o-1", "o-2"):
        await insert_job(owner, tenants.a, status="failed", payload={"orderId": order})
    other = await insert_job(owner, tenants.b, status="failed", payload={"orderId": "o-1"})
    client = sign_in(Role.VENUE_ADMIN)
    confirm = await client.get("/dashboard/jobs/bulk?action=retry&field=orderId&value=o-1")
    assert 'id="confirm-count">2<' in confirm.text
    done = await client.post(
        "/dashboard/jobs/bulk",
        data={"csrf_token": client.csrf, "action": "retry", "field": "orderId", "value": "o-1"},
    )
    assert done.status_code == 303
    assert "retried+2+jobs" in done.headers["location"]
    rows = await (
        await owner.execute("SELECT payload->>'orderId', tenant_id, status FROM jobkeeper.jobs ORDER BY 1, 3")
    ).fetchall()
    pending = [(order, tenant) for order, tenant, status in rows if status == "pending"]
    assert sorted(pending) == sorted([("o-1", tenants.a), ("o-1", tenants.a)])
    assert (await client.get(f"/dashboard/jobs/{other}")).status_code == 404


async def test_purge_dead_letters_with_confirmation(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    await insert_dead_letter(owner, tenants.a, queue="communication", type="send-email")
    await insert_dead_letter(owner, tenants.a)
    client = sign_in(Role.VENUE_ADMIN)
    confirm = await client.get("/dashboard/dead-letters/confirm?action=purge&queue=communication")
    assert 'id="confirm-count">1<' in confirm.text
    done = await client.post(
        "/dashboard/dead-letters/purge", data={"csrf_token": client.csrf, "queue": "communication"}
    )
    assert done.status_code == 303
    left = await (await owner.execute("SELECT queue FROM jobkeeper.dead_letter_jobs")).fetchall()
    assert left == [("background",)]


async def test_payloads_are_escaped(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    job = await insert_job(owner, tenants.a, payload={"x": "<script>alert(1)</script>"})
    page = await sign_in(Role.ADMIN).get(f"/dashboard/jobs/{job}")
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_run_now_of_a_schedule_whose_job_is_refused_shows_the_error_page(
    sign_in: SignIn, owner: Conn, tenants: Tenants
) -> None:
    """A schedule made before its type's payload rules (here: an email without its fields) cannot run:
    the dashboard answers its own error page with the reason, not the API's JSON problem."""
    row = await (
        await owner.execute(
            """
            INSERT INTO jobkeeper.schedules (tenant_id, name, cron, timezone, queue, job_type, payload)
            VALUES (%s, 'old-mail', '0 3 * * *', 'UTC', 'communication', 'send-email', '{}')
            RETURNING id
            """,
            (tenants.a,),
        )
    ).fetchone()
    assert row is not None
    client = sign_in(Role.VENUE_ADMIN)
    response = await client.post(f"/dashboard/schedules/{row[0]}/run", data={"csrf_token": client.csrf})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "schedule old-mail cannot run now" in response.text
    assert "payload" in response.text
    jobs = await (
        await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE type = 'send-email'")
    ).fetchone()
    assert jobs == (0,)


async def test_pause_and_resume_a_schedule(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    row = await (
        await owner.execute(
            """
            INSERT INTO jobkeeper.schedules (tenant_id, name, cron, timezone, queue, job_type, payload,
                                             next_run_at)
            VALUES (%s, 'hourly', '15 * * * *', 'UTC', 'background', 'generate-report', '{}',
                    now() + interval '20 minutes')
            RETURNING id
            """,
            (tenants.a,),
        )
    ).fetchone()
    assert row is not None
    client = sign_in(Role.VENUE_ADMIN)
    paused = await client.post(f"/dashboard/schedules/{row[0]}/pause", data={"csrf_token": client.csrf})
    assert paused.status_code == 303
    assert "hourly+paused" in paused.headers["location"]
    state = (
        "SELECT active, next_run_at, extract(minute FROM next_run_at) FROM jobkeeper.schedules WHERE id = %s"
    )
    assert await (await owner.execute(state, (row[0],))).fetchone() == (False, None, None)
    resumed = await client.post(f"/dashboard/schedules/{row[0]}/resume", data={"csrf_token": client.csrf})
    assert resumed.status_code == 303
    assert "hourly+resumed" in resumed.headers["location"]
    found = await (await owner.execute(state, (row[0],))).fetchone()
    assert found is not None
    assert found[0] is True
    assert found[2] == 15
