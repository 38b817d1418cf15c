"""Backoff is a pure function of the policy, the attempt number and a random source."""

from __future__ import annotations

import pytest

from jobkeeper.types import Backoff, Queue, Tier
from jobkeeper.worker.backoff import BackoffPolicy, backoff_delay


def test_fixed_backoff_is_the_same_every_time() -> None:
    policy = BackoffPolicy.fixed(5)
    assert [backoff_delay(policy, n, random=lambda: 0.9) for n in (1, 2, 3)] == [5, 5, 5]


def test_exponential_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = BackoffPolicy.exponential(2, 60, jitter=False)
    assert [backoff_delay(policy, n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 6.0), (0.5, 8.0), (0.999, 9.996)])
def test_jitter_spreads_the_delay_by_a_quarter_either_way(draw: float, expected: float) -> None:
    policy = BackoffPolicy.exponential(2, 3600)
    assert backoff_delay(policy, 3, random=lambda: draw) == pytest.approx(expected)


def test_jitter_never_exceeds_the_cap() -> None:
    policy = BackoffPolicy.exponential(2, 10)
    assert backoff_delay(policy, 4, random=lambda: 0.999) == 10


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = BackoffPolicy.exponential(2, 3600, jitter=False)
    assert backoff_delay(policy, 1000) == 3600


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        backoff_delay(BackoffPolicy.fixed(1), 0)


def test_policies_are_validated() -> None:
    with pytest.raises(ValueError, match="base"):
        BackoffPolicy.fixed(-1)
    with pytest.raises(ValueError, match="cap"):
        BackoffPolicy.exponential(10, 5)


def test_the_queue_row_gives_the_policy() -> None:
    money = Queue(
        name="money",
        tenant_id=None,
        tier=Tier.DURABLE,
        max_attempts=10,
        backoff=Backoff.EXPONENTIAL,
        backoff_base_seconds=2,
        backoff_max_seconds=3600,
        backoff_jitter=True,
        timeout_seconds=300,
        default_priority=7,
        paused=False,
    )
    assert BackoffPolicy.of_queue(money) == BackoffPolicy.exponential(2, 3600, jitter=True)
