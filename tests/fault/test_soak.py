"""Scenario 12: a bounded soak on loopback. Two workers take a steady mix of money, communication and
background jobs with failures at fixed rates (transient before the effect, transient after it, and
permanent) for ten minutes (`--run-slow`; 15 s by default).

Reported: p99 pickup latency (claim time minus the time the attempt became ready) per window, and the
workers' resident memory, sampled every second, which must stay roughly flat.
"""

from __future__ import annotations

import random
import statistics
import uuid
from typing import Any

import pytest

from jobkeeper import Client
from tests.fault.harness import (
    Conn,
    Fleet,
    JobSpec,
    Producer,
    Summary,
    db_now,
    job,
    pause,
    percentile,
    wait_until_finished,
)
from tests.fault.invariants import check_invariants

VARIANTS = [
    pytest.param((15.0, 5.0), id="short"),
    pytest.param((600.0, 60.0), id="slow", marks=pytest.mark.slow),
]
RATE = 40.0
"""Jobs enqueued per second."""
MIX = (("money", 0.4, 0.05), ("comms", 0.4, 0.02), ("background", 0.2, 0.1))
"""Kind, share of the jobs, seconds of work."""
TRANSIENT = 0.10
"""Share of jobs whose first attempt fails before the effect."""
LOST_ANSWER = 0.03
"""Share of money jobs whose first attempt fails after the effect (the effect must not repeat)."""
PERMANENT = 0.02
"""Share of jobs that fail permanently (dead-lettered)."""
RSS_GROWTH_MB = 20.0
CANCEL_EVERY = 5
"""Seconds between two cancellations (of a running job and of a job not yet due)."""


def _mix(seed: int) -> Any:
    rng = random.Random(seed)

    def make(n: int) -> JobSpec:
        kind, work = _pick(rng)
        options: dict[str, Any] = {"work": work}
        roll = rng.random()
        if roll < PERMANENT:
            options.update(permanent=True, expect="failed")
        elif roll < PERMANENT + TRANSIENT:
            options["fail_before"] = 1
        elif kind == "money" and roll < PERMANENT + TRANSIENT + LOST_ANSWER:
            options["fail_after"] = 1
        return job(kind, f"soak-{n}", **options)

    return make


def _pick(rng: random.Random) -> tuple[str, float]:
    roll = rng.random()
    for kind, share, work in MIX:
        if roll < share:
            return kind, work
        roll -= share
    return MIX[-1][0], MIX[-1][2]


async def _pickup_p99(db: Conn, since: Any, window: float) -> list[float]:
    """p99 of (claimed at - ready at) over the executions that started in each window."""
    cur = await db.execute(
        "SELECT floor(extract(epoch FROM started_at - %(since)s) / %(window)s)::int,"
        " extract(epoch FROM started_at - scheduled_at)"
        " FROM fault_executions WHERE started_at >= %(since)s",
        {"since": since, "window": window},
    )
    per_window: dict[int, list[float]] = {}
    for index, latency in await cur.fetchall():
        per_window.setdefault(index, []).append(float(latency))
    return [percentile(per_window.get(i, []), 0.99) for i in range(max(per_window, default=-1) + 1)]


@pytest.mark.parametrize("shape", VARIANTS)
async def test_soak_loses_nothing_keeps_latency_and_memory_flat(
    db: Conn, fleet: Fleet, producer_client: Client, summary: Summary, shape: tuple[float, float]
) -> None:
    duration, window = shape
    workers = await fleet.start_many(db, 2, "--concurrency", "20", "--batch-size", "10")
    started = await db_now(db)
    producer = Producer(producer_client, _mix(seed=12), rate=RATE).start()
    samples: list[list[float]] = [[] for _ in workers]
    to_cancel: list[uuid.UUID] = []
    while (elapsed := (await db_now(db) - started).total_seconds()) < duration:
        await pause(1.0)  # the sampling period
        for index, worker in enumerate(workers):
            assert worker.alive, worker.log_tail()
            samples[index].append(worker.rss_mb())
        if len(samples[0]) % CANCEL_EVERY == 0:
            # Cancel the pair enqueued one period ago (the long one is running by now), then enqueue a
            # job that runs long enough to be cancelled while running, and one not due yet.
            for job_id in to_cancel[-2:]:
                await producer_client.cancel(job_id)
            long = job("money", f"cancel-run-{elapsed:.0f}", work=60.0, expect="cancelled")
            later = {**job("money", f"cancel-later-{elapsed:.0f}", expect="cancelled"), "delay": 3600}
            to_cancel.extend(j.id for j in await producer_client.enqueue_many([long, later]))
    for job_id in to_cancel[-2:]:
        await producer_client.cancel(job_id)
    ids = [*await producer.stop(), *to_cancel]
    await wait_until_finished(db, ids, timeout=60, fleet=fleet)
    await fleet.stop_all()
    report = await check_invariants(db, ids)

    p99 = await _pickup_p99(db, started, window)
    growth = []
    for series in samples:
        quarter = max(1, len(series) // 4)
        early = statistics.median(series[quarter : 2 * quarter])  # after the first quarter's warm-up
        late = statistics.median(series[-quarter:])
        growth.append(late - early)
    assert max(growth) < RSS_GROWTH_MB, f"worker memory grew by {growth} MB: {samples}"
    assert report.dead_lettered > 0, "the mix should fail some jobs for good"
    assert report.re_executions > 0, "the mix should retry some jobs"
    assert report.cancelled == len(to_cancel)
    summary(
        report.line(
            "12-soak",
            f"{duration:g} s of {RATE:g} jobs/s (money/comms/background 40/40/20 %), "
            f"{TRANSIENT:.0%} transient failures, {LOST_ANSWER:.0%} of money answers lost after the "
            f"effect, {PERMANENT:.0%} permanent; a running and a delayed job cancelled every "
            f"{CANCEL_EVERY} s",
            p99_pickup_s_per_window="/".join(f"{v:.3f}" for v in p99),
            window_s=window,
            rss_mb_per_window=" ".join(_per_window(series, window) for series in samples),
            rss_mb_start="/".join(f"{s[0]:.0f}" for s in samples),
            rss_mb_end="/".join(f"{s[-1]:.0f}" for s in samples),
            rss_growth_mb="/".join(f"{g:.1f}" for g in growth),
        )
    )


def _per_window(series: list[float], window: float) -> str:
    """A worker's resident memory at the end of each window (one sample a second)."""
    step = max(1, round(window))
    return "/".join(f"{value:.1f}" for value in series[step - 1 :: step])
