"""The dashboard and job dependencies: the diagnosis of a waiting job, the job page's lists, the filter."""

from __future__ import annotations

import uuid

from jobkeeper.api.auth import Role
from tests.api.support import Conn
from tests.dashboard.conftest import SignIn
from tests.dashboard.conftest import sign_in as sign_in
from tests.dashboard.support import insert_job
from tests.fixtures import Tenants
from tests.fixtures import app as app
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants


async def _link(owner: Conn, tenant: uuid.UUID, child: uuid.UUID, *parents: uuid.UUID) -> None:
    for parent in parents:
        await owner.execute(
            "INSERT INTO jobkeeper.job_dependencies (depends_on, job_id, tenant_id) VALUES (%s, %s, %s)",
            (parent, child, tenant),
        )
        await owner.execute("UPDATE jobkeeper.jobs SET has_dependents = true WHERE id = %s", (parent,))


async def test_a_waiting_job_is_diagnosed_with_its_unfinished_dependencies(
    sign_in: SignIn, owner: Conn, tenants: Tenants
) -> None:
    running = await insert_job(owner, tenants.a, type="<b>extract</b>", status="processing")
    queued = await insert_job(owner, tenants.a, type="load", delay_seconds=600)
    done = await insert_job(owner, tenants.a, type="fetch", status="completed")
    child = await insert_job(owner, tenants.a, type="report", status="waiting")
    await _link(owner, tenants.a, child, running, queued, done)

    client = sign_in(Role.ADMIN)
    page = await client.get(f"/dashboard/jobs/{child}")
    assert page.status_code == 200
    diagnosis = page.text[page.text.index('id="diagnosis"') : page.text.index('id="depends-on"')]
    assert "Waiting on 2 dependencies" in diagnosis
    assert f'href="/dashboard/jobs/{running}"' in diagnosis
    assert f'href="/dashboard/jobs/{queued}"' in diagnosis
    assert f'href="/dashboard/jobs/{done}"' not in diagnosis  # completed: not holding it back
    assert '<span class="status processing">processing</span>' in diagnosis
    assert '<span class="status pending">pending</span>' in diagnosis
    assert "<b>extract" not in page.text
    assert "&lt;b&gt;extract&lt;/b&gt;" in page.text
    # The job page lists every parent under "Depends on", and a parent lists its dependents.
    depends_on = page.text[page.text.index('id="depends-on"') : page.text.index('id="dependents"')]
    for parent in (running, queued, done):
        assert f'href="/dashboard/jobs/{parent}"' in depends_on
    parent_page = await client.get(f"/dashboard/jobs/{done}")
    dependents = parent_page.text[parent_page.text.index('id="dependents"') :]
    assert f'href="/dashboard/jobs/{child}"' in dependents
    # The live fragment carries the same diagnosis, and the job list filters by the waiting status.
    fragment = await client.get(f"/dashboard/fragments/jobs/{child}", headers={"X-Requested-With": "fetch"})
    assert "Waiting on 2 dependencies" in fragment.text
    listed = await client.get("/dashboard/jobs?status=waiting")
    assert str(child) in listed.text
    assert str(running) not in listed.text
    assert '<input type="checkbox" name="status" value="waiting" checked>' in listed.text


async def test_another_tenants_dependencies_are_not_shown(
    sign_in: SignIn, owner: Conn, tenants: Tenants
) -> None:
    parent = await insert_job(owner, tenants.a, type="secret-parent")
    child = await insert_job(owner, tenants.a, type="report", status="waiting")
    await _link(owner, tenants.a, child, parent)
    page = await sign_in(Role.VENUE_ADMIN, tenants.b).get(f"/dashboard/jobs/{child}")
    assert page.status_code == 404
    assert "secret-parent" not in page.text
