"""The development outbox (jobkeeper.processors.outbox): the messages that send-email, send-sms and
send-push jobs kept instead of delivering, in the embedded development setup only."""

from __future__ import annotations

from fastapi import Query, Request, Response

from jobkeeper.api import cursors
from jobkeeper.dashboard.web import Signed, page_router, render, url
from jobkeeper.processors.outbox import JOB_TYPES, LABEL, TRANSPORT, enabled
from jobkeeper.store import outbox as store
from jobkeeper.types import Page

router = page_router()

PAGE_SIZE = 50


@router.get("/outbox", name="dashboard_outbox")
async def outbox(
    request: Request, viewer: Signed, cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH)
) -> Response:
    before_created_at, before_id = cursors.time_and_id(cursor)
    before = None if before_created_at is None or before_id is None else (before_created_at, before_id)
    # Listed even when the outbox is off here: messages kept before (or by another process) stay visible.
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        rows = await tx.run(store.list(JOB_TYPES, TRANSPORT, viewer.scope, Page(before, PAGE_SIZE)))
    next_page = None
    if len(rows) == PAGE_SIZE:
        next_page = url("/outbox", cursor=cursors.encode(rows[-1]["created_at"], rows[-1]["id"]))
    context = {
        "messages": rows,
        "label": LABEL,
        "enabled": enabled(viewer.state.settings),
        "next_page": next_page,
    }
    return render(request, "outbox.html", context, viewer=viewer)
