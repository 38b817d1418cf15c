"""Operations on alerts (sql/alerts.sql): the leader's alert checks write them and record their
deliveries; the API, the dashboard and the CLI list and acknowledge them; retention prunes them."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobkeeper.store.rows import from_row
from jobkeeper.store.run import Steps, named
from jobkeeper.types import Alert


def alert_from_row(row: dict[str, Any]) -> Alert:
    return from_row(Alert, row)


def insert_many(
    *,
    rules: Sequence[str],
    queues: Sequence[str | None],
    severities: Sequence[str],
    messages: Sequence[str],
    details: Sequence[dict[str, Any]],
    cooldowns: Sequence[float],
    now: datetime | None = None,
) -> Steps[builtins.list[dict[str, Any]]]:
    """Store new alerts, one per index of the lists, each unless an alert of its rule and queue was raised
    within its cooldown (seconds). The rows stored: id, rule, queue, severity, message, details,
    created_at."""
    rows: builtins.list[dict[str, Any]] = yield named(
        "insert_alerts",
        {
            "rules": builtins.list(rules),
            "queues": builtins.list(queues),
            "severities": builtins.list(severities),
            "messages": builtins.list(messages),
            "details": [json.dumps(d) for d in details],
            "cooldowns": builtins.list(cooldowns),
            "now": now,
        },
    )
    return rows


def record_delivery(alert_id: uuid.UUID, *, channel: str, ok: bool, error: str | None) -> Steps[None]:
    """Append one delivery attempt's outcome to the alert."""
    yield named("record_delivery", {"id": alert_id, "channel": channel, "ok": ok, "error": error})


def list(
    *,
    tenant_id: uuid.UUID | None = None,
    acknowledged: bool | None = None,
    severity: str | None = None,
    queue: str | None = None,
    rule: str | None = None,
    ids: Sequence[uuid.UUID] | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> Steps[builtins.list[Alert]]:
    """Alerts newest first, keyset-paged before (created_at, id); None filters nothing. Row-level
    security hides platform alerts (no tenant) from tenants."""
    rows = yield named(
        "list_alerts",
        {
            "ids": None if ids is None else builtins.list(ids),
            "tenant_id": tenant_id,
            "acknowledged": acknowledged,
            "severity": severity,
            "queue": queue,
            "rule": rule,
            "before_created_at": before[0] if before else None,
            "before_id": before[1] if before else None,
            "limit": limit,
        },
    )
    return [alert_from_row(row) for row in rows]


def get(alert_id: uuid.UUID) -> Steps[Alert | None]:
    found = yield from list(ids=[alert_id], limit=1)
    return found[0] if found else None


def acknowledge(alert_id: uuid.UUID, *, by: str) -> Steps[Alert | None]:
    """Acknowledge an alert as `by`; acknowledging twice keeps the first. None when there is none."""
    rows = yield named("acknowledge_alert", {"id": alert_id, "by": by})
    return alert_from_row(rows[0]) if rows else None


def prune(*, older_than: float, now: datetime | None, limit: int) -> Steps[int]:
    """Delete at most `limit` acknowledged alerts raised more than `older_than` seconds ago: how many."""
    deleted: int = yield named(
        "prune_alerts", {"older_than": older_than, "now": now, "limit": limit}, rows="count"
    )
    return deleted
