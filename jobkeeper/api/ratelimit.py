"""Request rate limiting of job creation, per principal, kept in PostgreSQL (seed 004 warning #2).

Each principal (tenant and token subject) has a token bucket row in `jobkeeper.rate_limits`; one atomic
statement (`api_take_tokens`) refills it from the database clock and takes one token per job created, so
the limit holds across every API process. A single job costs 1, a batch of n jobs costs n. The take runs
in the request's transaction: when the request fails afterwards, its tokens are given back by the rollback.
"""

from __future__ import annotations

import hashlib

from prometheus_client import Counter

from jobkeeper.api import problems
from jobkeeper.api.auth import Principal
from jobkeeper.api.tenancy import Tx
from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError

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

    async def take(self, tx: Tx, principal: Principal, cost: int, *, route: str) -> None:
        """Take `cost` tokens or raise 429 with Retry-After."""
        row = await tx.row(
            "api_take_tokens",
            {
                "tenant_id": principal.tenant_id,
                "key": self.key(principal),
                "capacity": self.capacity,
                "refill_per_second": self.refill_per_second,
                "cost": float(cost),
            },
        )
        assert row is not None
        if row["granted"]:
            return
        self.rejected.labels(route=route).inc()
        retry_after = float(row["retry_after"] or 1.0)
        raise problems.too_many_requests(
            retry_after,
            f"rate limit of {self.refill_per_second:g} jobs per second (bursts of {self.capacity:g}) reached "
            f"for {principal.subject}; retry after {retry_after:.1f} s",
        )
