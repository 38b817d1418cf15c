"""Operations on the development outbox (sql/outbox.sql): the messages that send-email, send-sms and
send-push jobs kept instead of delivering."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from typing import Any

from jobkeeper.store.run import Steps, named
from jobkeeper.types import Page


def list(
    types: Sequence[str], transport: str, tenant_id: uuid.UUID | None, page: Page
) -> Steps[builtins.list[dict[str, Any]]]:
    """Kept messages (the completed jobs of `types` whose result names `transport`), newest first;
    `page.before` is (created_at, id) of the last one of the previous page."""
    before_created_at, before_id = page.before if page.before is not None else (None, None)
    rows: builtins.list[dict[str, Any]] = yield named(
        "list_outbox",
        {
            "types": [*types],
            "transport": transport,
            "tenant_id": tenant_id,
            "before_created_at": before_created_at,
            "before_id": before_id,
            "limit": page.limit,
        },
    )
    return rows
