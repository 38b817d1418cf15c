"""Request rate limiting of job creation: per principal, in PostgreSQL, shared by every API process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from jobkeeper.api.auth import Role
from jobkeeper.errors import ConfigError
from tests.api.support import Conn, assert_problem, create_tenant, running
from tests.fixtures import Tokens
from tests.support import eventually

JOBS = "/api/v1/queue/jobs"


def sms(n: int) -> dict[str, object]:
    return {"type": "send-sms", "data": {"to": "+14155552671", "body": f"message {n}"}}


async def test_the_bucket_is_shared_by_api_processes_and_refills(
    make_app: Callable[..., FastAPI], tokens: Tokens, owner: Conn
) -> None:
    limits = {"api_rate_burst": 100, "api_rate_per_second": 20.0}
    first, second = make_app(**limits), make_app(**limits)
    async with running(first) as one, running(second) as two:
        full = {"jobs": [sms(n) for n in range(100)]}
        assert (await one.post(f"{JOBS}/batch", json=full, headers=tokens.venue_a)).status_code == 201
        # The other process sees the same bucket: all 100 tokens are gone, and 60 take 3 s to refill at
        # 20/s (a busy machine's delay between the two requests must not refill them first).
        batch = {"jobs": [sms(n) for n in range(60)]}
        refused = await two.post(f"{JOBS}/batch", json=batch, headers=tokens.venue_a)
        problem = assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert "rate limit" in problem["detail"]
        # Another principal has its own bucket, even in the same tenant.
        other = tokens.headers(Role.VENUE_ADMIN, tokens.tenants.a, subject="someone-else")
        assert (await two.post(f"{JOBS}/batch", json=batch, headers=other)).status_code == 201

        async def refilled() -> bool:
            response = await two.post(f"{JOBS}/batch", json=batch, headers=tokens.venue_a)
            return response.status_code == 201

        await eventually(refilled, timeout=10, what="the bucket to refill")
        metrics = (await two.get("/metrics")).text
        assert 'jobkeeper_api_rate_limited_total{route="/jobs/batch"}' in metrics
    rows = await (await owner.execute("SELECT count(*) FROM jobkeeper.rate_limits")).fetchone()
    assert rows == (2,)


async def test_a_refused_or_failed_request_spends_nothing(
    make_app: Callable[..., FastAPI], tokens: Tokens
) -> None:
    app = make_app(api_rate_burst=100, api_rate_per_second=0.001)
    async with running(app) as http:
        invalid = {"jobs": [sms(n) for n in range(99)] + [{"type": "send-sms", "data": {"to": "x"}}]}
        assert_problem(await http.post(f"{JOBS}/batch", json=invalid, headers=tokens.venue_a), 422)
        full = {"jobs": [sms(n) for n in range(100)]}
        assert (await http.post(f"{JOBS}/batch", json=full, headers=tokens.venue_a)).status_code == 201
        assert_problem(await http.post(JOBS, json=sms(1000), headers=tokens.venue_a), 429)
        # Reads are not rate limited.
        assert (await http.get(JOBS, headers=tokens.venue_a)).status_code == 200


async def test_a_request_refused_after_its_take_gives_the_tokens_back(
    make_app: Callable[..., FastAPI], tokens: Tokens, owner: Conn
) -> None:
    # The take commits on its own ahead of the request; the request then fails (its tenant is deactivated,
    # checked before commit) and the tokens come back: the bucket is full again, twice over.
    app = make_app(api_rate_burst=100, api_rate_per_second=0.001)
    dormant = await create_tenant(owner, "dormant-bucket", active=False)
    headers = tokens.headers(Role.VENUE_ADMIN, dormant)
    full = {"jobs": [sms(n) for n in range(100)]}
    async with running(app) as http:
        for _ in range(2):
            assert_problem(await http.post(f"{JOBS}/batch", json=full, headers=headers), 403)
    row = await (
        await owner.execute("SELECT tokens FROM jobkeeper.rate_limits WHERE tenant_id = %s", (dormant,))
    ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(100, abs=0.5)
    jobs = await (
        await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE tenant_id = %s", (dormant,))
    ).fetchone()
    assert jobs == (0,)
    # A tenant that is not registered is refused as such, and gets no bucket.
    async with running(app) as http:
        unknown = tokens.headers(Role.USER, uuid.uuid4())
        body = assert_problem(await http.post(JOBS, json=sms(1), headers=unknown), 403)
        assert "not registered" in body["detail"]


async def test_concurrent_takes_never_overdraw_the_bucket(
    make_app: Callable[..., FastAPI], tokens: Tokens, owner: Conn
) -> None:
    app = make_app(api_rate_burst=100, api_rate_per_second=0.001, pool_max=8)
    async with running(app) as http:
        batch = {"jobs": [sms(n) for n in range(5)]}
        answers = await asyncio.gather(
            *(http.post(f"{JOBS}/batch", json=batch, headers=tokens.venue_a) for _ in range(30))
        )
    assert sorted(r.status_code for r in answers) == [201] * 20 + [429] * 10
    rows = await (await owner.execute("SELECT count(*) FROM jobkeeper.jobs")).fetchone()
    assert rows == (100,)


async def test_a_burst_smaller_than_a_batch_is_a_configuration_error(
    make_app: Callable[..., FastAPI],
) -> None:
    with pytest.raises(ConfigError, match="JOBKEEPER_API_RATE_BURST"):
        make_app(api_rate_burst=10)
