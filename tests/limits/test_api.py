"""Outbound limiters through the API (view, adjust, waits in Prometheus) and the queue metrics history."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from jobkeeper import Settings
from jobkeeper.limits.outbound import gate
from jobkeeper.maintenance.retention import snapshot
from jobkeeper.store.pool import async_pool
from tests.api.support import Conn, assert_problem
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

P = "/api/v1/queue"


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p = async_pool(Settings.from_env({}, pool_min=1, pool_max=2), db_url)
    await p.open()
    yield p
    await p.close()


async def _claimed_sms(owner: Conn, tenant: uuid.UUID, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    worker = uuid.uuid4()
    cur = await owner.execute(
        "INSERT INTO jobkeeper.jobs (tenant_id, queue, type, tier, max_attempts, status, attempts, worker_id,"
        " heartbeat_at) SELECT %s, 'communication', 'send-sms', 'fast', 3, 'processing', 1, %s, now()"
        " FROM generate_series(1, %s) RETURNING id",
        (tenant, worker, n),
    )
    return worker, [row[0] for row in await cur.fetchall()]


async def test_view_adjust_and_count_waits(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    listed = (await http.get(f"{P}/limiters", headers=tokens.user_a)).json()["items"]
    stripe = next(item for item in listed if item["name"] == "stripe")
    assert (stripe["rate_per_second"], stripe["burst"], stripe["waits"], stripe["in_flight"]) == (
        100,
        20,
        0,
        0,
    )
    assert {"stripe", "twilio", "sendgrid", "solana_rpc", "webpush", "analytics"} <= {
        i["name"] for i in listed
    }

    # Twilio: burst 5; eight claimed SMS jobs → five run, three wait (and are counted).
    await owner.execute(
        "UPDATE jobkeeper.rate_limiters SET tokens = burst, refilled_at = now() WHERE name = 'twilio'"
    )
    worker, jobs = await _claimed_sms(owner, tokens.tenants.a, 8)
    result = await gate(owner, [(job, "twilio") for job in jobs], worker_id=worker)
    assert (len(result.granted), len(result.deferred)) == (5, 3)
    twilio = next(
        i
        for i in (await http.get(f"{P}/limiters", headers=tokens.admin)).json()["items"]
        if i["name"] == "twilio"
    )
    assert twilio["waits"] == 3
    assert twilio["in_flight"] == 5
    metrics = (await http.get("/metrics")).text
    assert 'jobkeeper_rate_limiter_waits_total{limiter="twilio"} 3.0' in metrics
    assert 'jobkeeper_rate_limiter_in_flight{limiter="twilio"} 5.0' in metrics

    assert_problem(await http.patch(f"{P}/limiters/twilio", json={"burst": 9}, headers=tokens.venue_a), 403)
    changed = await http.patch(
        f"{P}/limiters/twilio", json={"burst": 9, "rate_per_second": 15}, headers=tokens.admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["burst"], changed.json()["rate_per_second"]) == (9, 15)
    uncapped = await http.patch(
        f"{P}/limiters/twilio", json={"unlimited_concurrency": True}, headers=tokens.admin
    )
    assert uncapped.json()["max_concurrency"] is None
    assert_problem(await http.patch(f"{P}/limiters/nope", json={"burst": 2}, headers=tokens.admin), 404)
    assert_problem(
        await http.patch(f"{P}/limiters/twilio", json={"colour": "red"}, headers=tokens.admin), 422
    )


async def test_metrics_history_per_tenant(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn, pool: AsyncConnectionPool[Any]
) -> None:
    await _claimed_sms(owner, tokens.tenants.a, 2)
    await _claimed_sms(owner, tokens.tenants.b, 3)
    await snapshot(pool)
    await snapshot(pool)
    mine = (await http.get(f"{P}/queues/communication/metrics", headers=tokens.user_a)).json()
    assert mine["tenant_id"] == str(tokens.tenants.a)
    assert [p["running"] for p in mine["points"]] == [2, 2]
    everyone = (await http.get(f"{P}/queues/communication/metrics", headers=tokens.admin)).json()
    assert everyone["tenant_id"] is None
    assert [p["running"] for p in everyone["points"]] == [5, 5]
    assert everyone["points"][0]["captured_at"] <= everyone["points"][1]["captured_at"]
    theirs = await http.get(
        f"{P}/queues/communication/metrics?tenant_id={tokens.tenants.b}", headers=tokens.user_a
    )
    assert_problem(theirs, 403)
