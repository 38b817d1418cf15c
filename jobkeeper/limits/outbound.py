"""Outbound rate limiters: token buckets in `jobkeeper.rate_limiters`, shared by every worker.

After a worker claims a batch, the jobs whose type names a limiter are gated in one transaction
(`jobkeeper.store.limiters.gate`, which calls `plan` here): the limiter rows (and their groups') are
locked, tokens refilled from the database clock, and each job gets a token and a concurrency slot, or is
put back to pending at the moment its token is due, without spending an attempt. No worker sleeps
waiting for a token. A limiter in a group takes from its own bucket and the group's: several services
share one budget.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from jobkeeper.store import limiters
from jobkeeper.store.run import run

CONCURRENCY_RETRY_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class LimiterState:
    name: str
    rate_per_second: float
    burst: int
    max_concurrency: int | None
    tokens: float
    refilled_at: datetime
    group: str | None

    def refilled(self, now: datetime) -> float:
        elapsed = max(0.0, (now - self.refilled_at).total_seconds())
        return min(float(self.burst), self.tokens + elapsed * self.rate_per_second)


@dataclass(frozen=True, slots=True)
class Gate:
    granted: list[uuid.UUID]
    deferred: list[tuple[uuid.UUID, datetime]]
    tokens: dict[str, float]
    now: datetime
    waits: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per limiter, how many of the deferred jobs it held back (a group counts its members' too)."""


def plan(
    requests: Sequence[tuple[uuid.UUID, str]],
    limiters: dict[str, LimiterState],
    in_flight: dict[str, int],
    now: datetime,
) -> Gate:
    """Grant tokens and concurrency slots to `requests` (job id, limiter), in order.

    `in_flight` counts processing jobs per limiter, including the requesting jobs themselves (they are
    claimed already), so each request's own slot is subtracted before checking the cap.
    """
    tokens = {name: state.refilled(now) for name, state in limiters.items()}
    requested_by: dict[str, int] = defaultdict(int)
    for _, name in requests:
        requested_by[name] += 1
    others = {name: in_flight.get(name, 0) - requested_by.get(name, 0) for name in limiters}
    group_in_flight: dict[str, int] = defaultdict(int)
    for name, member in limiters.items():
        if member.group is not None:
            group_in_flight[member.group] += in_flight.get(name, 0) - requested_by.get(name, 0)
    running: dict[str, int] = defaultdict(int)
    waiting: dict[str, int] = defaultdict(int)
    granted: list[uuid.UUID] = []
    deferred: list[tuple[uuid.UUID, datetime]] = []
    held: dict[str, int] = defaultdict(int)
    for job_id, name in requests:
        found = limiters.get(name)
        if found is None:  # a limiter that no longer exists does not hold work back
            granted.append(job_id)
            continue
        state = found
        chain = [state]
        if state.group is not None and state.group in limiters:
            chain.append(limiters[state.group])
        slot_free = all(
            s.max_concurrency is None
            or (others.get(s.name, 0) if s is state else group_in_flight[s.name]) + running[s.name]
            < s.max_concurrency
            for s in chain
        )
        has_token = all(tokens[s.name] >= 1.0 for s in chain)
        if slot_free and has_token:
            for s in chain:
                tokens[s.name] -= 1.0
                running[s.name] += 1
            granted.append(job_id)
            continue
        if not has_token:
            # The k-th job left waiting on a bucket holding t tokens gets the token due in (k - t) / rate
            # seconds: waiting jobs are spread over the coming tokens instead of all waking at once.
            delays = []
            for s in chain:
                waiting[s.name] += 1
                delays.append((waiting[s.name] - tokens[s.name]) / s.rate_per_second)
            delay = max(delays)
        else:
            delay = CONCURRENCY_RETRY_SECONDS
        for s in chain:
            held[s.name] += 1
        deferred.append((job_id, now + timedelta(seconds=max(delay, 0.001))))
    return Gate(granted, deferred, tokens, now, dict(held))


async def gate(
    conn: psycopg.AsyncConnection[Any],
    requests: Sequence[tuple[uuid.UUID, str]],
    *,
    worker_id: uuid.UUID,
    now: datetime | None = None,
) -> Gate:
    """Take tokens for claimed jobs; put back the ones that must wait: `limiters.gate` on `conn` (one
    transaction, four statements). Its errors are jobkeeper's DatabaseError."""
    return await run(conn, limiters.gate(requests, worker_id=worker_id, now=now))
