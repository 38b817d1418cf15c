"""The overview's numbers against real data: exact counts past the old cap of 1,000, and sparklines with
a scale that agree with the snapshots they draw."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from jobkeeper.api.auth import Role
from jobkeeper.maintenance.retention import snapshot
from tests.api.support import Conn
from tests.dashboard.conftest import SignIn
from tests.dashboard.conftest import sign_in as sign_in
from tests.fixtures import Tenants
from tests.fixtures import app as app
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with AsyncConnectionPool(db_url, min_size=1, max_size=2, open=False) as opened:
        yield opened


async def finished_jobs(owner: Conn, tenant: uuid.UUID, count: int, status: str = "completed") -> None:
    """`count` jobs of the background queue that finished a second ago (one statement)."""
    await owner.execute(
        """
        INSERT INTO jobkeeper.jobs (tenant_id, queue, type, tier, status, attempts, max_attempts,
                                    started_at, completed_at)
        SELECT %(tenant)s, 'background', 'dash-task', q.tier, %(status)s, 1, 3,
               now() - interval '1 second', now() - interval '1 second'
        FROM jobkeeper.queues q, generate_series(1, %(count)s)
        WHERE q.name = 'background'
        """,
        {"tenant": tenant, "count": count, "status": status},
    )


def cell(fragment: str, key: str) -> str:
    found = re.search(rf'id="queue-background".*?data-count="{key}">(.*?)</td>', fragment, re.S)
    assert found is not None, key
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def caption(fragment: str, label: str) -> str:
    found = re.search(
        rf'aria-label="{label} of background">.*?<figcaption>(.*?)</figcaption>', fragment, re.S
    )
    assert found is not None, label
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def test_counts_past_a_thousand_are_exact(sign_in: SignIn, owner: Conn, tenants: Tenants) -> None:
    await finished_jobs(owner, tenants.a, 1_500)
    await finished_jobs(owner, tenants.a, 1_203, status="failed")
    fragment = (await sign_in(Role.ADMIN).get("/dashboard/fragments/overview")).text
    assert cell(fragment, "completed") == "1,500"
    assert cell(fragment, "failed") == "1,203"
    assert 'id="total-completed">1,500<' in fragment


async def test_sparklines_show_the_latest_snapshot_and_their_scale(
    sign_in: SignIn, owner: Conn, tenants: Tenants, pool: AsyncConnectionPool[Any]
) -> None:
    await finished_jobs(owner, tenants.a, 1_200)
    await finished_jobs(owner, tenants.a, 300, status="failed")
    await snapshot(pool)  # 1,200 completed in its minute: 1,200/min, 20 % failed
    await owner.execute("UPDATE jobkeeper.jobs SET completed_at = now() - interval '1 hour'")
    await finished_jobs(owner, tenants.a, 6)
    await snapshot(pool)  # the next minute: 6 completed
    for client in (sign_in(Role.ADMIN), sign_in(Role.VENUE_ADMIN)):
        fragment = (await client.get("/dashboard/fragments/overview")).text
        assert caption(fragment, "throughput") == "now 6.0/min max 1,200/min"
        assert caption(fragment, "failure rate") == "now 0% failed max 20%"
