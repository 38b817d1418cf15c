"""Request rate limiting of job creation, per principal, kept in PostgreSQL (seed 004 warning #2).

Each principal (tenant and token subject) has a token bucket row in `jobkeeper.rate_limits`; one atomic
statement (`limiters.take_tokens`) refills it from the database clock and takes one token per job created, so
the limit holds across every API process. A single job costs 1, a batch of n jobs costs n.

The take runs ahead of the request's transaction, as a transaction of its own committed asynchronously
(`Tenancy.transaction(ahead=...)`): the bucket row is locked for that statement only, so requests of one
principal no longer wait for each other's commits. A refused take answers 429 before anything else runs;
a request that fails after a granted take gives its tokens back (`limiters.give_back_tokens`), so a failed
request spends nothing.
"""

from __future__ import annotations

import hashlib

from prometheus_client import Counter

from jobkeeper.api import problems
from jobkeeper.api.auth import Principal
from jobkeeper.api.tenancy import Ahead, Tenancy
from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError
from jobkeeper.store import limiters

MAX_BATCH = 100
KEY_PREFIX = "api:jobs:"


class RateLimiter:
    def __init__(self, settings: Settings, rejected: Counter) -> None:
        self.check(settings)
        self.capacity = float(settings.api_rate_burst)
        self.refill_per_second = settings.api_rate_per_second
        self.rejected = rejected

    @staticmethod
    def check(settings: Settings) -> None:
        if settings.api_rate_burst < MAX_BATCH:
            raise ConfigError(
                f"JOBKEEPER_API_RATE_BURST ({settings.api_rate_burst}) must be at least {MAX_BATCH}, the "
                "largest batch, or a full batch could never be accepted"
            )

    @staticmethod
    def key(principal: Principal) -> str:
        subject = principal.subject
        if len(KEY_PREFIX) + len(subject) > 200:
            subject = "sha256:" + hashlib.sha256(subject.encode("utf-8")).hexdigest()
        return KEY_PREFIX + subject

    def take(self, principal: Principal, cost: int) -> Ahead:
        """The statement that takes `cost` tokens, run ahead of the request's transaction."""
        return Ahead(
            limiters.take_tokens(
                tenant_id=principal.tenant_id,
                key=self.key(principal),
                capacity=self.capacity,
                refill_per_second=self.refill_per_second,
                cost=float(cost),
            )
        )

    @staticmethod
    def granted(take: Ahead) -> bool:
        return bool(take.row and take.row["granted"])

    def answer(self, take: Ahead, principal: Principal, *, route: str) -> None:
        """Raise 429 with Retry-After unless the take was granted."""
        if self.granted(take):
            return
        self.rejected.labels(route=route).inc()
        retry_after = float((take.row or {}).get("retry_after") or 1.0)
        raise problems.too_many_requests(
            retry_after,
            f"rate limit of {self.refill_per_second:g} jobs per second (bursts of {self.capacity:g}) reached "
            f"for {principal.subject}; retry after {retry_after:.1f} s",
        )

    async def give_back(self, tenancy: Tenancy, principal: Principal, cost: int) -> None:
        """Return the tokens of a request that failed after its take was granted: in a transaction of the
        platform's own, since the request may have failed on its tenant (deactivated meanwhile)."""
        async with tenancy.transaction(None, synchronous_commit=False) as tx:
            await tx.run(
                limiters.give_back_tokens(
                    tenant_id=principal.tenant_id, key=self.key(principal), cost=float(cost)
                )
            )
