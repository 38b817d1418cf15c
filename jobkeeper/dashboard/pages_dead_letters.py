"""Dead letters: list (filtered, keyset-paged), detail, replay one, replay or purge a filtered set."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Query, Request, Response

from jobkeeper.api import cursors, problems
from jobkeeper.api.problems import FieldError
from jobkeeper.api.schemas import QUEUE_PATTERN
from jobkeeper.dashboard.history import numbered
from jobkeeper.dashboard.web import Signed, Viewer, checked_form, page_router, redirect, render, url
from jobkeeper.dead_letters import DeadLetterFilter
from jobkeeper.store import dead_letters as store
from jobkeeper.store import queues
from jobkeeper.types import DeadLetter, Page

router = page_router()

PAGE_SIZE = 50
MAX_REPLAY = 10_000
FIELDS = ("queue", "type", "tenant", "since", "until", "replayed")


@dataclass(frozen=True, slots=True)
class Selection:
    """The dead-letter filter as the forms send it."""

    values: dict[str, str]

    @classmethod
    def read(cls, pairs: Sequence[tuple[str, str]]) -> Selection:
        values: dict[str, str] = {}
        for key, raw in pairs:
            text = raw.strip()
            if key in FIELDS and text and key not in values:
                if "\x00" in text or len(text) > 400:
                    raise problems.invalid([FieldError(key, "is too long or contains NUL")])
                values[key] = text
        return cls(values)

    def pairs(self) -> list[tuple[str, str]]:
        return [(k, self.values[k]) for k in FIELDS if k in self.values]

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def where(self, viewer: Viewer, *, replayed: bool | None = None) -> DeadLetterFilter:
        errors: list[FieldError] = []
        queue = self.values.get("queue")
        if queue is not None and not re.match(QUEUE_PATTERN, queue):
            errors.append(FieldError("queue", "is not a queue name"))
        tenant = viewer.tenant_filter(self.values.get("tenant"), errors)
        times: dict[str, datetime | None] = {}
        for name in ("since", "until"):
            raw = self.values.get(name)
            times[name] = None
            if raw:
                try:
                    moment = datetime.fromisoformat(raw)
                except ValueError:
                    errors.append(FieldError(name, f"is not a date and time: {raw!r}"))
                else:
                    times[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        shown = self.values.get("replayed")
        if replayed is None and shown in ("yes", "no"):
            replayed = shown == "yes"
        if errors:
            raise problems.invalid(errors)
        return DeadLetterFilter(
            queue=queue,
            type=self.values.get("type"),
            tenant_id=tenant,
            since=times["since"],
            until=times["until"],
            replayed=replayed,
        )


@router.get("/dead-letters", name="dashboard_dead_letters")
async def list_dead_letters(
    request: Request, viewer: Signed, cursor: str | None = Query(None, max_length=cursors.MAX_CURSOR_LENGTH)
) -> Response:
    selection = Selection.read(request.query_params.multi_items())
    where = selection.where(viewer)
    before_failed_at, before_id = cursors.time_and_id(cursor)
    before = None if before_failed_at is None or before_id is None else (before_failed_at, before_id)
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        letters = await tx.run(store.list(where, Page(before, PAGE_SIZE)))
        known = await tx.run(queues.list_queues())
    next_page = None
    if len(letters) == PAGE_SIZE:
        last = letters[-1]
        next_page = url(
            "/dead-letters", [*selection.pairs(), ("cursor", cursors.encode(last.failed_at, last.id))]
        )
    return render(
        request,
        "dead_letters.html",
        {
            "letters": letters,
            "selection": selection,
            "queues": [q.name for q in known],
            "next_page": next_page,
            "replay_all": url("/dead-letters/confirm", [*selection.pairs(), ("action", "replay")]),
            "purge_all": url("/dead-letters/confirm", [*selection.pairs(), ("action", "purge")]),
        },
        viewer=viewer,
    )


def _action(raw: str | None) -> str:
    if raw not in ("replay", "purge"):
        raise problems.invalid([FieldError("action", "must be replay or purge")])
    return raw


@router.get("/dead-letters/confirm")
async def confirm(request: Request, viewer: Signed) -> Response:
    viewer.require_tenant_admin()
    action = _action(request.query_params.get("action"))
    selection = Selection.read(request.query_params.multi_items())
    # Replay skips dead letters already replayed; purge takes the filter as shown.
    where = selection.where(viewer, replayed=False if action == "replay" else None)
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        total = await tx.run(store.count(where))
    noun = f"{total} dead letter{'s' if total != 1 else ''}"
    message = (
        f"Each becomes a fresh pending job (at most {MAX_REPLAY:,} at a time, oldest first)."
        if action == "replay"
        else "They are deleted for good; the failed jobs themselves are kept."
    )
    return render(
        request,
        "confirm.html",
        {
            "title": f"{action.title()} {noun}?",
            "message": message,
            "count": total,
            "action_url": url(f"/dead-letters/{action}"),
            "fields": selection.pairs(),
            "button": f"{action.title()} {noun}",
            "back": url("/dead-letters", selection.pairs()),
            "danger": action == "purge",
        },
        viewer=viewer,
    )


@router.post("/dead-letters/replay")
async def replay_set(request: Request, viewer: Signed) -> Response:
    form = await checked_form(request, viewer)
    viewer.require_tenant_admin()
    selection = Selection.read(form.pairs)
    where = selection.where(viewer, replayed=False)
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        jobs = await tx.run(store.replay(where, MAX_REPLAY))
    return redirect(url("/dead-letters", selection.pairs()), notice=f"replayed {len(jobs)} dead letters")


@router.post("/dead-letters/purge")
async def purge_set(request: Request, viewer: Signed) -> Response:
    form = await checked_form(request, viewer)
    viewer.require_tenant_admin()
    selection = Selection.read(form.pairs)
    where = selection.where(viewer)
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        purged = await tx.run(store.purge(where))
    return redirect(url("/dead-letters", selection.pairs()), notice=f"purged {len(purged)} dead letters")


async def _one(viewer: Viewer, dead_letter_id: uuid.UUID) -> DeadLetter:
    return await viewer.state.tenancy.found(
        viewer.principal, store.get(dead_letter_id), "dead letter", dead_letter_id
    )


@router.get("/dead-letters/{dead_letter_id}")
async def detail(request: Request, viewer: Signed, dead_letter_id: uuid.UUID) -> Response:
    letter = await _one(viewer, dead_letter_id)
    return render(
        request,
        "dead_letter.html",
        {"letter": letter, "attempts": numbered(letter.errors, letter.failed_at)},
        viewer=viewer,
    )


@router.post("/dead-letters/{dead_letter_id}/replay")
async def replay_one(request: Request, viewer: Signed, dead_letter_id: uuid.UUID) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        jobs = await tx.run(store.replay(DeadLetterFilter(ids=[dead_letter_id]), 1))
    if not jobs:
        letter = await _one(viewer, dead_letter_id)
        raise problems.conflict(
            f"dead letter {dead_letter_id} was already replayed as job {letter.replayed_job_id}"
        )
    return redirect(url(f"/jobs/{jobs[0].id}"), notice="replayed as this new job")


@router.post("/dead-letters/{dead_letter_id}/purge")
async def purge_one(request: Request, viewer: Signed, dead_letter_id: uuid.UUID) -> Response:
    await checked_form(request, viewer)
    viewer.require_tenant_admin()
    async with viewer.state.tenancy.transaction(viewer.principal) as tx:
        purged = await tx.run(store.purge(DeadLetterFilter(ids=[dead_letter_id])))
    if not purged:
        raise problems.not_found("dead letter", dead_letter_id)
    return redirect(url("/dead-letters"), notice="dead letter purged")
