"""Readiness: the database answers, its schema is at this version's head, and a worker is alive.

The migration check opens a connection of its own (Alembic), so its answer is cached: 60 s when the
schema is at head, 5 s otherwise. Check details name what failed, never an internal error message.
"""

from __future__ import annotations

import asyncio
import logging
import time

from jobkeeper.api.schemas import Check, Health
from jobkeeper.api.tenancy import Tenancy
from jobkeeper.config import Settings
from jobkeeper.store import migrate, server

log = logging.getLogger(__name__)

MIGRATIONS_OK_TTL = 60.0
MIGRATIONS_FAILED_TTL = 5.0
MIGRATIONS_TIMEOUT = 10.0


class Readiness:
    def __init__(self, database_url: str, settings: Settings, tenancy: Tenancy) -> None:
        self.database_url = database_url
        self.settings = settings
        self.tenancy = tenancy
        self._migrations: tuple[float, Check] | None = None

    async def check(self) -> Health:
        checks: dict[str, Check] = {}
        try:
            async with asyncio.timeout(self.settings.api_acquire_timeout + 1.0):
                async with self.tenancy.transaction(None) as tx:
                    ping = await tx.run(server.ping())
                    # WP2's workers.count_live replaces this query by name (issue 16).
                    workers = await tx.row(
                        "api_live_workers", {"max_age": self.settings.ready_worker_max_age}
                    )
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", exc)
            skipped = Check(ok=False, detail="not checked: the database is unreachable")
            checks = {
                "database": Check(ok=False, detail="unreachable"),
                "migrations": skipped,
                "workers": skipped,
            }
            return Health(status="unavailable", checks=checks)
        checks["database"] = Check(ok=ping, detail="reachable")
        checks["migrations"] = await self._check_migrations()
        live = int(workers["live"]) if workers else 0
        age = self.settings.ready_worker_max_age
        checks["workers"] = Check(
            ok=live > 0,
            detail=f"{live} worker(s) with a heartbeat in the last {age:g} s"
            if live
            else f"no worker heartbeat in the last {age:g} s",
        )
        ok = all(check.ok for check in checks.values())
        return Health(status="ok" if ok else "unavailable", checks=checks)

    async def _check_migrations(self) -> Check:
        now = time.monotonic()
        if self._migrations is not None and self._migrations[0] > now:
            return self._migrations[1]
        head = migrate.head()
        try:
            current = await asyncio.wait_for(
                asyncio.to_thread(migrate.current, self.database_url), MIGRATIONS_TIMEOUT
            )
        except Exception as exc:
            log.warning("readiness: migration check failed: %s", exc)
            result = Check(ok=False, detail="the schema version could not be read")
        else:
            if current == head:
                result = Check(ok=True, detail=f"at head {head}")
            else:
                result = Check(ok=False, detail=f"schema at {current or 'none'}, this version needs {head}")
        ttl = MIGRATIONS_OK_TTL if result.ok else MIGRATIONS_FAILED_TTL
        self._migrations = (time.monotonic() + ttl, result)
        return result
