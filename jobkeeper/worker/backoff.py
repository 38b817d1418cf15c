"""Retry backoff: how long a failed attempt waits before the next one. Pure functions, no I/O.

The delay is added to the database clock when the retry is written (`now() + interval`), so a worker's
own clock never decides when a job runs again.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass

from jobkeeper.types import Backoff, Queue

JITTER = 0.25
"""Exponential delays are spread by ±25 % so that jobs that failed together do not retry together."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    kind: Backoff
    base: float
    """Seconds: the fixed delay, or the first delay of the exponential series."""
    cap: float
    """Seconds: no delay is longer than this (jitter included)."""
    jitter: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base >= 0):
            raise ValueError(f"backoff base must be a finite number of seconds ≥ 0, got {self.base!r}")
        if not (math.isfinite(self.cap) and self.cap >= self.base):
            raise ValueError(f"backoff cap must be finite and ≥ the base ({self.base}), got {self.cap!r}")

    @classmethod
    def fixed(cls, seconds: float) -> BackoffPolicy:
        return cls(Backoff.FIXED, seconds, seconds, jitter=False)

    @classmethod
    def exponential(cls, base: float, cap: float, *, jitter: bool = True) -> BackoffPolicy:
        return cls(Backoff.EXPONENTIAL, base, cap, jitter=jitter)

    @classmethod
    def of_queue(cls, queue: Queue) -> BackoffPolicy:
        return cls(queue.backoff, queue.backoff_base_seconds, queue.backoff_max_seconds, queue.backoff_jitter)


def backoff_delay(
    policy: BackoffPolicy, attempt: int, *, random: Callable[[], float] = _random.random
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based) before the next attempt.

    Fixed: always `base`. Exponential: `base * 2 ** (attempt - 1)`, times a factor in [0.75, 1.25) drawn
    from `random` (a callable returning [0, 1)) when jitter is on, capped at `cap`.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if policy.kind is Backoff.FIXED:
        delay = policy.base
    else:
        # 2 ** 1000 overflows a float: past the cap the exponent no longer matters.
        exponent = min(attempt - 1, 64)
        delay = policy.base * 2.0**exponent
    if policy.jitter:
        delay *= 1.0 - JITTER + 2 * JITTER * random()
    return min(delay, policy.cap)
