"""The overview's queue table fits common desktop widths: its last columns are not cut off (platform
admin: the widest table, with the pause/resume column)."""

from __future__ import annotations

import pytest

from jobkeeper.api.auth import Role
from tests.api.support import Conn
from tests.dashboard.support import insert_job
from tests.e2e.conftest import OpenPage
from tests.fixtures import Tenants


@pytest.mark.parametrize("width", [1440, 1920])
async def test_the_failure_rate_column_is_within_the_viewport(
    open_page: OpenPage, owner: Conn, tenants: Tenants, width: int
) -> None:
    await insert_job(owner, tenants.a, status="failed", errors=[])
    # The widest captions a busy queue shows ("now 52,002/min", "max 52,002/min").
    await owner.execute(
        """
        INSERT INTO jobkeeper.queue_metrics (queue, tenant_id, waiting, scheduled, running, completed, failed,
                                             dead, throughput_per_minute)
        VALUES ('background', NULL, 0, 0, 0, 52002, 25, 1, 52002.0)
        """
    )
    page = await open_page(Role.ADMIN, width=width)
    await page.goto("/dashboard/")
    header = page.locator("table.queues thead th", has_text="Failures, 1 h")
    box = await header.bounding_box()
    frame = await page.locator("#overview .scroll").first.bounding_box()
    assert box is not None
    assert frame is not None
    right = box["x"] + box["width"]
    # Within the window and within the table's scrolling frame (no horizontal scroll needed to see it).
    assert right <= width, f"failure-rate column ends at {right:.0f} px of {width}"
    assert right <= frame["x"] + frame["width"], f"column ends at {right:.0f}, its frame at {frame}"
    for cell in await page.locator("table.queues tbody td:has(figure[aria-label^='failure rate'])").all():
        cell_box = await cell.bounding_box()
        assert cell_box is not None
        assert cell_box["x"] + cell_box["width"] <= frame["x"] + frame["width"]
