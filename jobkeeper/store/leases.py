"""Operations on named leases (sql/leases.sql): the maintenance leader's, on the database clock."""

from __future__ import annotations

import uuid
from datetime import datetime

from jobkeeper.store.run import Steps, named


def acquire(*, name: str, holder: uuid.UUID, ttl: float, now: datetime | None = None) -> Steps[bool]:
    """Take lease `name` when it is free or expired, or renew it when `holder` holds it, for `ttl`
    seconds; True when `holder` holds it afterwards."""
    rows = yield named("acquire_lease", {"name": name, "holder": holder, "ttl": ttl, "now": now})
    return bool(rows)


def release(*, name: str, holder: uuid.UUID) -> Steps[None]:
    """Give lease `name` up, if `holder` holds it."""
    yield named("release_lease", {"name": name, "holder": holder})
