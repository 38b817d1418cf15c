"""Dead letters: list, show, replay (one or a filtered set) and purge. Reached as `client.dead_letters`;
the operations are the store's (`jobkeeper.store.dead_letters`), imported on use: the CLI imports this
module for its filter and limits, without the database driver."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobkeeper.enqueue import parse_job_id
from jobkeeper.errors import InvalidJobError
from jobkeeper.types import DeadLetter, Job, Page

if TYPE_CHECKING:
    from jobkeeper.store.run import AsyncDb

MAX_PAGE = 1000
REPLAY_MAX = 100_000


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; every field left None matches everything."""

    ids: builtins.list[uuid.UUID] | None = None
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


class DeadLetters:
    def __init__(self, pool: Any) -> None:
        from jobkeeper.store.run import AsyncDb

        self.db: AsyncDb = AsyncDb(pool)

    async def list(
        self, where: DeadLetterFilter | None = None, *, limit: int = 100, after: DeadLetter | None = None
    ) -> builtins.list[DeadLetter]:
        """Newest first. Page with `after=` the last item of the previous page (keyset paging)."""
        from jobkeeper.store import dead_letters as store

        if not 1 <= limit <= MAX_PAGE:
            raise InvalidJobError("limit", f"must be from 1 to {MAX_PAGE}, got {limit}")
        page = Page((after.failed_at, after.id) if after else None, limit)
        return await self.db.run(store.list(where or DeadLetterFilter(), page))

    async def get(self, dead_letter_id: uuid.UUID | str) -> DeadLetter | None:
        from jobkeeper.store import dead_letters as store

        return await self.db.run(store.get(parse_job_id(dead_letter_id)))

    async def replay(self, where: DeadLetterFilter, *, limit: int = MAX_PAGE) -> builtins.list[Job]:
        """Put every matching dead letter not yet replayed back as a fresh pending job (oldest first)."""
        from jobkeeper.store import dead_letters as store

        if not 1 <= limit <= REPLAY_MAX:
            raise InvalidJobError("limit", f"must be from 1 to {REPLAY_MAX}, got {limit}")
        return await self.db.run(store.replay(where, limit))

    async def replay_one(self, dead_letter_id: uuid.UUID | str) -> Job | None:
        """Replay one dead letter; None when it does not exist or was replayed already."""
        jobs = await self.replay(DeadLetterFilter(ids=[parse_job_id(dead_letter_id)]), limit=1)
        return jobs[0] if jobs else None

    async def purge(self, where: DeadLetterFilter) -> int:
        """Delete the matching dead letters; returns how many. The failed jobs themselves are kept."""
        from jobkeeper.store import dead_letters as store

        return len(await self.db.run(store.purge(where)))
