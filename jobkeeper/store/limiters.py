"""Operations on rate limiting (sql/limiters.sql): the outbound limiters the workers share
(`rate_limiters`) and the token buckets of requests and scheduled jobs (`rate_limits`)."""

from __future__ import annotations

import builtins
import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobkeeper.limits import outbound
from jobkeeper.store.rows import from_row
from jobkeeper.store.run import Atomic, Steps, named
from jobkeeper.types import Limiter

# -- outbound limiters ---------------------------------------------------------------------------------


def gate(
    requests: Sequence[tuple[uuid.UUID, str]], *, worker_id: uuid.UUID, now: datetime | None = None
) -> Steps[outbound.Gate]:
    """Take tokens for claimed jobs (job id, limiter); put back to pending the ones that must wait, at
    their token's time, with no attempt spent. One transaction of four statements (two when none of the
    limiters exists): it runs after every claim of jobs whose type names a limiter."""
    gated: outbound.Gate = yield Atomic(_gate(requests, worker_id, now))
    return gated


def _gate(
    requests: Sequence[tuple[uuid.UUID, str]], worker_id: uuid.UUID, now: datetime | None
) -> Steps[outbound.Gate]:
    names = sorted({name for _, name in requests})
    rows = yield named("lock_limiters", {"names": names, "now": now})
    if not rows:
        return outbound.Gate([job_id for job_id, _ in requests], [], {}, now or datetime.now().astimezone())
    # A bucket's clock never goes back: had this worker's clock been read before another worker's refill
    # it waited for, storing it would count the time in between twice (more tokens than rate).
    clock: datetime = max(rows[0]["now"], *(row["refilled_at"] for row in rows))
    limiters = {
        row["name"]: outbound.LimiterState(
            row["name"],
            row["rate_per_second"],
            row["burst"],
            row["max_concurrency"],
            row["tokens"],
            row["refilled_at"],
            row["limiter_group"],
        )
        for row in rows
    }
    in_flight = {row["name"]: row["in_flight"] for row in (yield named("limiter_in_flight"))}
    result = outbound.plan(requests, limiters, in_flight, clock)
    yield named(
        "store_limiter_tokens",
        {
            "names": builtins.list(result.tokens),
            "tokens": [max(0.0, math.floor(t * 1e9) / 1e9) for t in result.tokens.values()],
            "refilled_ats": [clock] * len(result.tokens),
            "waits": [result.waits.get(name, 0) for name in result.tokens],
        },
    )
    if result.deferred:
        yield named(
            "defer_jobs",
            {
                "ids": [job_id for job_id, _ in result.deferred],
                "run_ats": [at for _, at in result.deferred],
                "worker_id": worker_id,
            },
        )
    return result


def _limiter(row: dict[str, Any]) -> Limiter:
    return from_row(Limiter, row)


def list() -> Steps[builtins.list[Limiter]]:
    """Every outbound limiter with its tokens now (refilled to the database clock), calls in flight (the
    jobs processing whose type names it, as the caller may see them) and jobs put back so far."""
    rows = yield named("list_limiters")
    return [_limiter(row) for row in rows]


def list_waiting(tenant_id: uuid.UUID | None) -> Steps[builtins.list[dict[str, Any]]]:
    """The dashboard's limiters: each one's tokens now, `in_flight` as stored, the pending jobs of
    `tenant_id` (None: all) waiting for a token (`waiting`), and the job types that name it
    (`job_types`, those of shared queues and the tenant's own)."""
    rows: builtins.list[dict[str, Any]] = yield named("list_limiters_waiting", {"tenant_id": tenant_id})
    return rows


def update(
    name: str,
    *,
    rate_per_second: float | None = None,
    burst: int | None = None,
    max_concurrency: int | None = None,
    clear_max_concurrency: bool = False,
) -> Steps[Limiter | None]:
    """Change a limiter (None leaves a value as it is; `clear_max_concurrency` removes the cap) and read
    it back as `list` shows it; None when there is no limiter `name`."""
    changed = yield named(
        "update_limiter",
        {
            "name": name,
            "rate_per_second": rate_per_second,
            "burst": burst,
            "max_concurrency": max_concurrency,
            "clear_max_concurrency": clear_max_concurrency,
        },
    )
    if not changed:
        return None
    found = [limiter for limiter in (yield from list()) if limiter.name == name]
    return found[0] if found else None


# -- token buckets (rate_limits) -----------------------------------------------------------------------


def take_tokens(
    *, tenant_id: uuid.UUID, key: str, capacity: float, refill_per_second: float, cost: float
) -> Steps[dict[str, Any] | None]:
    """Take `cost` tokens from the bucket (tenant_id, key), refilled from the database clock, creating it
    full: the row says whether it was `granted`, what `remaining`, and when not, `retry_after` seconds
    (None for a tenant that does not exist: nothing is taken). Run it as a transaction of its own (it commits
    asynchronously and its row lock should end with it)."""
    rows = yield named(
        "take_tokens",
        {
            "tenant_id": tenant_id,
            "key": key,
            "capacity": capacity,
            "refill_per_second": refill_per_second,
            "cost": cost,
        },
    )
    return rows[0] if rows else None


def take_up_to(
    *, tenant_id: uuid.UUID, key: str, capacity: float, refill_per_second: float, cost: int
) -> Steps[int]:
    """Take `cost` tokens, or as many whole tokens as the bucket holds: how many were taken."""
    row = yield from take_tokens(
        tenant_id=tenant_id, key=key, capacity=capacity, refill_per_second=refill_per_second, cost=float(cost)
    )
    if row is None or row["granted"]:
        return cost if row is not None else 0
    # Refused: retry_after is (cost - available) / rate, so what the bucket holds is known.
    available = cost - float(row["retry_after"] or cost) * refill_per_second
    partial = min(cost, math.floor(available + 1e-9))
    if partial < 1:
        return 0
    row = yield from take_tokens(
        tenant_id=tenant_id,
        key=key,
        capacity=capacity,
        refill_per_second=refill_per_second,
        cost=float(partial),
    )
    return partial if row is not None and row["granted"] else 0


def give_back_tokens(*, tenant_id: uuid.UUID, key: str, cost: float) -> Steps[None]:
    """Return tokens of a granted take whose work then failed (never above the bucket's capacity)."""
    yield named("give_back_tokens", {"tenant_id": tenant_id, "key": key, "cost": cost})
