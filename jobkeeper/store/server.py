"""Operations about the server and the request itself (sql/server.sql)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from jobkeeper.store.run import Steps, named


def enter(
    *, role: str, tenant_id: str, synchronous_commit: bool | None, principal_tenant: uuid.UUID | None
) -> Steps[dict[str, Any]]:
    """Begin an API request's transaction as `role`, scoped to `tenant_id` ("" for none), and read the
    database clock and whether `principal_tenant` is active (None when it does not exist). Run inside the
    transaction: every setting is transaction-local."""
    rows = yield named(
        "api_enter",
        {
            "role": role,
            "tenant_id": tenant_id,
            "synchronous_commit": None
            if synchronous_commit is None
            else ("on" if synchronous_commit else "off"),
            "principal_tenant": principal_tenant,
        },
    )
    entered: dict[str, Any] = rows[0]
    return entered


def ping() -> Steps[bool]:
    rows = yield named("api_ping")
    return bool(rows and rows[0]["ok"] == 1)


def database_now() -> Steps[datetime]:
    """The time on the database clock (the transaction's start, inside one)."""
    rows = yield named("database_now")
    now: datetime = rows[0]["now"]
    return now
