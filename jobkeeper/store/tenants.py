"""Operations on tenants (sql/tenants.sql)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from jobkeeper.store.run import Steps, named


def missing(tenant_ids: Sequence[uuid.UUID]) -> Steps[list[uuid.UUID]]:
    """Which of `tenant_ids` do not exist: what an enqueue refused by the tenant's foreign key names."""
    rows = yield named("missing_tenants", {"tenant_ids": list(tenant_ids)}, rows="tuple")
    return [row[0] for row in rows]


def list_all() -> Steps[list[dict[str, Any]]]:
    """Tenants (id, name, slug, active) by name, at most 500: the platform admin's tenant filter. A
    tenant's own role reads its own row only."""
    rows: list[dict[str, Any]] = yield named("list_tenants")
    return rows
