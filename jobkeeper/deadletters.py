"""Dead letters: list, show, replay (one or a filtered set) and purge. Reached as `client.dead_letters`."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobkeeper.enqueue import parse_job_id
from jobkeeper.errors import InvalidJobError
from jobkeeper.store.queries import query
from jobkeeper.store.rows import job_from_row
from jobkeeper.types import DeadLetter, Job

if TYPE_CHECKING:  # psycopg is imported on use: the CLI imports this module for its options
    from psycopg_pool import AsyncConnectionPool

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; every field left None matches everything."""

    ids: list[uuid.UUID] | None = None
    queue: str | None = None
    type: str | None = None
    tenant_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    replayed: bool | None = None

    def params(self) -> dict[str, Any]:
        return {
            "ids": self.ids,
            "queue": self.queue,
            "type": self.type,
            "tenant_id": self.tenant_id,
            "since": self.since,
            "until": self.until,
            "replayed": self.replayed,
        }


def dead_letter_from_row(row: dict[str, Any]) -> DeadLetter:
    return DeadLetter(**row)


class DeadLetters:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def list(
        self, where: DeadLetterFilter | None = None, *, limit: int = 100, after: DeadLetter | None = None
    ) -> builtins.list[DeadLetter]:
        """Newest first. Page with `after=` the last item of the previous page (keyset paging)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidJobError("limit", f"must be from 1 to {MAX_PAGE}, got {limit}")
        params = (where or DeadLetterFilter()).params() | {
            "limit": limit,
            "before_failed_at": after.failed_at if after else None,
            "before_id": after.id if after else None,
        }
        from psycopg.rows import dict_row

        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query("list_dead_letters"), params)
            return [dead_letter_from_row(row) for row in await cur.fetchall()]

    async def get(self, dead_letter_id: uuid.UUID | str) -> DeadLetter | None:
        found = await self.list(DeadLetterFilter(ids=[parse_job_id(dead_letter_id)]), limit=1)
        return found[0] if found else None

    async def replay(self, where: DeadLetterFilter, *, limit: int = MAX_PAGE) -> builtins.list[Job]:
        """Put every matching dead letter not yet replayed back as a fresh pending job (oldest first)."""
        if not 1 <= limit <= 100_000:
            raise InvalidJobError("limit", f"must be from 1 to 100000, got {limit}")
        params = where.params() | {"limit": limit}
        from psycopg.rows import dict_row

        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query("replay_dead_letters"), params)
            return [job_from_row(row) for row in await cur.fetchall()]

    async def replay_one(self, dead_letter_id: uuid.UUID | str) -> Job | None:
        """Replay one dead letter; None when it does not exist or was replayed already."""
        jobs = await self.replay(DeadLetterFilter(ids=[parse_job_id(dead_letter_id)]), limit=1)
        return jobs[0] if jobs else None

    async def purge(self, where: DeadLetterFilter) -> int:
        """Delete the matching dead letters; returns how many. The failed jobs themselves are kept."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(query("purge_dead_letters"), where.params())
            return len(await cur.fetchall())
