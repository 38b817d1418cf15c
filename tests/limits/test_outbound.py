from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from jobkeeper import Client, JobStatus
from jobkeeper.limits.outbound import CONCURRENCY_RETRY_SECONDS, LimiterState, gate, plan
from tests.payloads import unique

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _limiter(
    name: str = "stripe",
    *,
    rate: float = 10,
    burst: int = 5,
    tokens: float = 5,
    conc: int | None = None,
    group: str | None = None,
    age: float = 0,
) -> LimiterState:
    return LimiterState(name, rate, burst, conc, tokens, NOW - timedelta(seconds=age), group)


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_grants_up_to_the_tokens_and_spreads_the_rest_over_coming_tokens() -> None:
    jobs = _ids(8)
    result = plan([(j, "stripe") for j in jobs], {"stripe": _limiter()}, {"stripe": 8}, NOW)
    assert result.granted == jobs[:5]
    # 0 tokens left at 10/s: the k-th waiting job is due in k/10 s.
    assert result.deferred == [(j, NOW + timedelta(seconds=k / 10)) for k, j in enumerate(jobs[5:], start=1)]
    assert result.tokens == {"stripe": 0.0}


def test_refill_is_capped_at_the_burst() -> None:
    result = plan(
        [(j, "stripe") for j in _ids(10)], {"stripe": _limiter(tokens=0, age=60)}, {"stripe": 10}, NOW
    )
    assert len(result.granted) == 5  # a minute idle refills to the burst of 5, not 600
    partial = plan(
        [(j, "stripe") for j in _ids(3)], {"stripe": _limiter(tokens=0, age=0.25)}, {"stripe": 3}, NOW
    )
    assert len(partial.granted) == 2  # 2.5 tokens after 250 ms
    assert partial.deferred[0][1] == NOW + timedelta(seconds=0.05)  # the third token is due in 50 ms


def test_concurrency_counts_jobs_already_running_elsewhere() -> None:
    jobs = _ids(4)
    limiters = {"twilio": _limiter("twilio", tokens=5, conc=3)}
    # 2 jobs of this limiter run on other workers; this batch claimed 4 more (6 processing in all).
    result = plan([(j, "twilio") for j in jobs], limiters, {"twilio": 6}, NOW)
    assert result.granted == jobs[:1]
    assert [at for _, at in result.deferred] == [NOW + timedelta(seconds=CONCURRENCY_RETRY_SECONDS)] * 3
    assert result.tokens["twilio"] == 4  # deferred jobs took no token


def test_a_group_shares_one_budget_between_its_members() -> None:
    limiters = {
        "sendgrid": _limiter("sendgrid", tokens=5, group="email"),
        "smtp": _limiter("smtp", tokens=5, group="email"),
        "email": _limiter("email", tokens=3),
    }
    requests = [(j, "sendgrid") for j in _ids(2)] + [(j, "smtp") for j in _ids(2)]
    result = plan(requests, limiters, {"sendgrid": 2, "smtp": 2}, NOW)
    assert len(result.granted) == 3
    assert result.tokens == {"sendgrid": 3.0, "smtp": 4.0, "email": 0.0}


def test_an_unknown_limiter_does_not_hold_work_back() -> None:
    job = uuid.uuid4()
    assert plan([(job, "gone")], {}, {}, NOW).granted == [job]


async def test_gate_defers_without_spending_an_attempt(client: Client, db_url: str) -> None:
    jobs = await client.enqueue_many(
        [{"type": "send-sms", "payload": unique("send-sms", n)} for n in range(8)]
    )
    worker = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = 1, worker_id = %s,"
            " heartbeat_at = now()",
            (worker,),
        )
        # twilio: 10/s, burst 5, max concurrency 10, full bucket.
        await conn.execute(
            "UPDATE jobkeeper.rate_limiters SET tokens = burst, refilled_at = now() WHERE name = 'twilio'"
        )
        result = await gate(conn, [(j.id, "twilio") for j in jobs], worker_id=worker)
        assert len(result.granted) == 5
        cur = await conn.execute("SELECT tokens FROM jobkeeper.rate_limiters WHERE name = 'twilio'")
        row = await cur.fetchone()
        assert row is not None
        assert row[0] < 1
    for job_id, run_at in result.deferred:
        waiting = await client.get_job(job_id)
        assert waiting is not None
        assert waiting.status is JobStatus.PENDING
        assert waiting.attempts == 0
        assert waiting.scheduled_at == run_at
        assert run_at > result.now


async def test_a_clock_read_before_another_workers_refill_never_moves_the_bucket_back(db_url: str) -> None:
    """A worker whose clock was read before another worker's refill (it waited for the limiter's lock)
    must not store that older time: the next refill would count the time in between twice."""
    worker = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobkeeper.rate_limiters SET rate_per_second = 10, burst = 1, tokens = 0,"
            " max_concurrency = NULL, refilled_at = %s WHERE name = 'twilio'",
            (NOW,),
        )
        later = NOW + timedelta(seconds=1)
        first = await gate(conn, [(uuid.uuid4(), "twilio")], worker_id=worker, now=later)
        assert len(first.granted) == 1  # a second refilled the one-token bucket
        stale = await gate(
            conn, [(uuid.uuid4(), "twilio")], worker_id=worker, now=NOW + timedelta(seconds=0.5)
        )
        assert stale.granted == []
        cur = await conn.execute("SELECT refilled_at FROM jobkeeper.rate_limiters WHERE name = 'twilio'")
        row = await cur.fetchone()
        assert row is not None
        assert row[0] == later
        # 50 ms after the last refill: half a token at 10/s, so nothing may start.
        soon = await gate(
            conn, [(uuid.uuid4(), "twilio")], worker_id=worker, now=later + timedelta(seconds=0.05)
        )
        assert soon.granted == []
