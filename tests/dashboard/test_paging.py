"""The job list's behaviour at scale, made visible with small limits (docs/dashboard.md, "At a million rows"):
keyset pages, the payload filter's bounded window (it goes on from where its window ended, so no match
is ever skipped), and capped counts on the overview and the bulk confirmation."""

from __future__ import annotations

import re

import pytest

from jobkeeper.api.auth import Role
from jobkeeper.dashboard import pages_jobs, pages_overview
from tests.api.support import Conn
from tests.dashboard.conftest import SignIn
from tests.dashboard.support import insert_job
from tests.fixtures import Tenants

OLDER = re.compile(r'href="(/dashboard/jobs\?[^"]*cursor=[^"]+)" rel="next"')


def _older(html: str) -> str | None:
    found = OLDER.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_a_payload_filter_pages_through_its_windows_without_skipping_a_match(
    sign_in: SignIn, owner: Conn, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages_jobs, "PAYLOAD_SCAN", 4)
    monkeypatch.setattr(pages_jobs, "PAGE_SIZE", 2)
    # Oldest first: a match, then 9 others, then a match, then 2 others (newest).
    for n in range(13):
        order = "wanted" if n in (0, 10) else f"o-{n}"
        await insert_job(owner, tenants.a, payload={"orderId": order, "n": n})
    await insert_job(owner, tenants.b, payload={"orderId": "wanted"})  # another tenant's: never listed
    client = sign_in(Role.VENUE_ADMIN)
    page = await client.get("/dashboard/jobs?field=orderId&value=wanted")
    found: list[str] = re.findall(r'href="/dashboard/jobs/([0-9a-f-]{36})"', page.text)
    windows = 1
    while (link := _older(page.text)) is not None:
        assert 'id="payload-scan"' in page.text or len(found) % 2 == 0
        page = await client.get(link)
        found += re.findall(r'href="/dashboard/jobs/([0-9a-f-]{36})"', page.text)
        windows += 1
        assert windows < 10, "the pages must end"
    rows = await (
        await owner.execute(
            "SELECT id::text FROM jobkeeper.jobs WHERE tenant_id = %s AND payload->>'orderId' = 'wanted'"
            " ORDER BY created_at DESC, id DESC",
            (tenants.a,),
        )
    ).fetchall()
    assert list(dict.fromkeys(found)) == [row[0] for row in rows]
    assert windows >= 3, "the match at n=0 is three windows of 4 away"


async def test_counts_are_capped_on_the_overview_and_the_bulk_confirmation(
    sign_in: SignIn, owner: Conn, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages_overview, "CAPS", dict.fromkeys(pages_overview.CAPS, 3))
    monkeypatch.setattr(pages_jobs, "MAX_BULK", 3)
    for _ in range(5):
        await insert_job(owner, tenants.a, status="failed")
    await insert_job(owner, tenants.a, status="failed", queue="communication", type="x")
    client = sign_in(Role.VENUE_ADMIN)
    overview = await client.get("/dashboard/")
    assert 'id="total-failed">4+<' in overview.text  # 3+ in one queue, 1 in another
    assert ">3+<" in overview.text
    confirm = await client.get("/dashboard/jobs/bulk?action=retry&status=failed")
    assert "more than 3" in confirm.text
    assert 'id="confirm-count">more than 3<' in confirm.text
    exact = await client.get("/dashboard/jobs/bulk?action=retry&status=failed&queue=communication")
    assert 'id="confirm-count">1<' in exact.text
