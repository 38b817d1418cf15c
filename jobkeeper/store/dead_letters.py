"""Operations on dead letters, the jobs that failed for good (sql/dead_letters.sql): list, get, count,
replay as fresh jobs, purge; and what the dead-letter alert reads."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from jobkeeper.dead_letters import DeadLetterFilter
from jobkeeper.store.rows import job_from_row
from jobkeeper.store.run import Steps, named
from jobkeeper.types import DeadLetter, Job, Page


def dead_letter_from_row(row: dict[str, Any]) -> DeadLetter:
    return DeadLetter(**row)


def list(where: DeadLetterFilter, page: Page) -> Steps[builtins.list[DeadLetter]]:
    """The matching dead letters, newest failure first; `page.before` is (failed_at, id) of the last one
    of the previous page."""
    before_failed_at, before_id = page.before if page.before is not None else (None, None)
    rows = yield named(
        "list_dead_letters",
        where.params() | {"limit": page.limit, "before_failed_at": before_failed_at, "before_id": before_id},
    )
    return [dead_letter_from_row(row) for row in rows]


def get(dead_letter_id: uuid.UUID) -> Steps[DeadLetter | None]:
    found = yield from list(DeadLetterFilter(ids=[dead_letter_id]), Page(None, 1))
    return found[0] if found else None


def count(where: DeadLetterFilter) -> Steps[int]:
    rows = yield named("count_dead_letters", where.params())
    return int(rows[0]["total"])


def replay(where: DeadLetterFilter, limit: int) -> Steps[builtins.list[Job]]:
    """Put up to `limit` matching dead letters not replayed yet (oldest first) back as fresh pending jobs;
    returns the new jobs. A live idempotency key then points at the new job."""
    rows = yield named("replay_dead_letters", where.params() | {"limit": limit})
    return [job_from_row(row) for row in rows]


def purge(where: DeadLetterFilter) -> Steps[builtins.list[uuid.UUID]]:
    """Delete the matching dead letters (the failed jobs themselves are kept); returns their ids."""
    rows = yield named("purge_dead_letters", where.params())
    return [row["id"] for row in rows]


def watermark() -> Steps[datetime | None]:
    """The newest failure time the last dead-letter alert covered; None before the first alert."""
    rows = yield named("dead_letter_watermark")
    latest: datetime | None = rows[0]["latest"] if rows else None
    return latest


def since(moment: datetime | str) -> Steps[builtins.list[dict[str, Any]]]:
    """Dead letters of durable (money) queues newer than `moment` ("-infinity": all), per queue: count,
    latest failure and up to ten job ids."""
    rows: builtins.list[dict[str, Any]] = yield named("new_dead_letters", {"since": moment})
    return rows
