"""Operations on cron schedules (sql/schedules.sql): the API's, the dashboard's and the CLI's reads and
writes, and the scheduler's tick.

Each write that more than one surface makes exists once here: create under the tenant's lock, pause and
resume (`set_active`, with the API's meaning), delete.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from jobkeeper import cron
from jobkeeper.errors import InvalidJobError
from jobkeeper.store import server
from jobkeeper.store.rows import from_row
from jobkeeper.store.run import Atomic, Steps, named
from jobkeeper.types import Schedule


def schedule_from_row(row: Mapping[str, Any]) -> Schedule:
    return from_row(Schedule, row)


def create(values: Mapping[str, Any], *, max_schedules: int) -> Steps[Schedule | None]:
    """Insert a schedule (`values`: its columns, next_run_at included) unless its tenant has
    `max_schedules` already: None then. The tenant's lock makes two concurrent creates count one after the
    other. A name the tenant uses already raises ConflictError (field "name")."""
    created: Schedule | None = yield Atomic(_create(values, max_schedules))
    return created


def _create(values: Mapping[str, Any], max_schedules: int) -> Steps[Schedule | None]:
    yield named("lock_tenant_schedules", {"tenant_id": values["tenant_id"]})
    rows = yield named("insert_schedule", {**values, "max_schedules": max_schedules})
    return schedule_from_row(rows[0]) if rows else None


def list(
    *,
    tenant_id: uuid.UUID | None = None,
    active: bool | None = None,
    queue: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    ids: Sequence[uuid.UUID] | None = None,
    after: tuple[str, uuid.UUID] | None = None,
    limit: int,
) -> Steps[builtins.list[Schedule]]:
    """Schedules by name, keyset-paged after (name, id); None filters nothing."""
    rows = yield named(
        "list_schedules",
        {
            "ids": None if ids is None else builtins.list(ids),
            "tenant_id": tenant_id,
            "active": active,
            "queue": queue,
            "job_type": job_type,
            "name": name,
            "after_name": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return [schedule_from_row(row) for row in rows]


def get(schedule_id: uuid.UUID) -> Steps[Schedule | None]:
    found = yield from list(ids=[schedule_id], limit=1)
    return found[0] if found else None


def find(tenant_id: uuid.UUID, ref: str) -> Steps[Schedule | None]:
    """The tenant's schedule named by `ref`, its id or its name (the CLI's way to name one)."""
    try:
        schedule_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        schedule_id = None
    if schedule_id is not None:
        found = yield from list(tenant_id=tenant_id, ids=[schedule_id], limit=1)
        if found:
            return found[0]
    found = yield from list(tenant_id=tenant_id, name=ref, limit=1)
    return found[0] if found else None


def lock(schedule_id: uuid.UUID) -> Steps[Schedule | None]:
    """The schedule, locked until the caller's transaction ends."""
    rows = yield named("lock_schedule", {"id": schedule_id})
    return schedule_from_row(rows[0]) if rows else None


def update(schedule_id: uuid.UUID, values: Mapping[str, Any]) -> Steps[Schedule | None]:
    """Write every column of `values` (the merged, validated schedule, next_run_at included), after
    `lock` in the same transaction. A name the tenant uses already raises ConflictError."""
    rows = yield named("update_schedule", {**values, "id": schedule_id})
    return schedule_from_row(rows[0]) if rows else None


def set_active(
    schedule_id: uuid.UUID, active: bool, *, check: Callable[[Schedule], None] | None = None
) -> Steps[Schedule | None]:
    """Pause or resume a schedule: None when there is none. Paused, it has no next run; resumed, it fires
    from its next slot after now on the database clock (slots that passed while it was paused are not
    run), and a schedule already active keeps its next run. `check` sees the locked schedule first and
    may refuse by raising. An expression that cannot fire any more raises InvalidJobError ("cron")."""
    changed: Schedule | None = yield Atomic(_set_active(schedule_id, active, check))
    return changed


def _set_active(
    schedule_id: uuid.UUID, active: bool, check: Callable[[Schedule], None] | None
) -> Steps[Schedule | None]:
    current = yield from lock(schedule_id)
    if current is None:
        return None
    if check is not None:
        check(current)
    next_run = current.next_run_at if active else None
    if active and (not current.active or next_run is None):
        next_run = _next_slot(current.cron, current.timezone, (yield from server.database_now()))
    rows = yield named("set_schedule_active", {"id": schedule_id, "active": active, "next_run_at": next_run})
    return schedule_from_row(rows[0])


def _next_slot(expression: str, timezone: str, now: datetime) -> datetime:
    cron.validate(expression, timezone)  # InvalidJobError naming "cron" or "timezone"
    try:
        return cron.next_fire(expression, timezone, now)
    except Exception as exc:
        raise InvalidJobError("cron", f"never fires: {expression!r}") from exc


def delete(schedule_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None) -> Steps[bool]:
    """Delete a schedule (only of `tenant_id`, when given); False when there was none."""
    rows = yield named("delete_schedule", {"id": schedule_id, "tenant_id": tenant_id})
    return bool(rows)


def record_run(schedule_id: uuid.UUID, job_id: uuid.UUID) -> Steps[bool]:
    """Record a "run now" of the schedule (its job); its regular slots are unchanged."""
    rows = yield named("record_schedule_run", {"id": schedule_id, "job_id": job_id})
    return bool(rows)


# The scheduler's tick (jobkeeper.maintenance.scheduler): rows stay dicts, the planner's input.


def due(*, now: datetime | None, limit: int, bucket_key: str) -> Steps[builtins.list[dict[str, Any]]]:
    """Due schedules, round-robin between tenants, with the database clock (`now`) and the status of
    each one's last job; tenants whose `bucket_key` bucket is empty are left out. No locks."""
    rows: builtins.list[dict[str, Any]] = yield named(
        "due_schedules", {"now": now, "limit": limit, "bucket_key": bucket_key}
    )
    return rows


def lock_due(ids: Sequence[uuid.UUID], versions: Sequence[datetime]) -> Steps[set[uuid.UUID]]:
    """Lock the schedules still at their `versions` (updated_at), skipping locked ones: their ids."""
    rows = yield named("lock_due_schedules", {"ids": builtins.list(ids), "versions": builtins.list(versions)})
    return {row["id"] for row in rows}


def advance(columns: Mapping[str, Sequence[Any]]) -> Steps[None]:
    """Move schedules on, one list per column: ids, next_run_ats, last_run_ats, last_job_ids, missed,
    keep_active (False deactivates)."""
    yield named("advance_schedules", columns)
