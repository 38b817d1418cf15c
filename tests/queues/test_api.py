"""Queues: list, statistics and their cache, pause and resume, clean."""

from __future__ import annotations

import httpx

from tests.api.support import Conn, assert_problem, create_queue, dead_letter, insert_job
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

Q = "/api/v1/queue"
SMS = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}


async def test_list_queues_shows_shared_and_own_queues(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    await create_queue(owner, "b-private", tokens.tenants.b)
    names_a = [q["name"] for q in (await http.get(f"{Q}/queues", headers=tokens.user_a)).json()["items"]]
    names_b = [q["name"] for q in (await http.get(f"{Q}/queues", headers=tokens.user_b)).json()["items"]]
    names_admin = [q["name"] for q in (await http.get(f"{Q}/queues", headers=tokens.admin)).json()["items"]]
    assert names_a == ["background", "communication", "money"]
    assert names_b == ["b-private", "background", "communication", "money"]
    assert names_admin == names_b


async def test_stats_count_the_callers_jobs_only(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    for _ in range(2):
        await insert_job(owner, tokens.tenants.a, status="completed", run_seconds=1.0)
    await http.post(f"{Q}/jobs", json=SMS, headers=tokens.user_a)
    await http.post(
        f"{Q}/jobs", json=SMS | {"options": {"delay": 600_000}, "idempotency_key": "d"}, headers=tokens.user_a
    )
    await insert_job(owner, tokens.tenants.b, status="failed")
    await dead_letter(owner, tokens.tenants.a)

    stats = (await http.get(f"{Q}/queues/communication/stats", headers=tokens.user_a)).json()
    assert stats["counts"] == {
        "waiting": 1,
        "scheduled": 1,
        "processing": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "awaiting_dependencies": 0,
    }
    assert (stats["dead_letters"], stats["tenant_id"], stats["cached"]) == (1, str(tokens.tenants.a), False)
    assert stats["oldest_waiting_seconds"] >= 0
    b_stats = (await http.get(f"{Q}/queues/communication/stats", headers=tokens.user_b)).json()
    assert b_stats["counts"]["failed"] == 1
    assert b_stats["counts"]["completed"] == 0
    everyone = (await http.get(f"{Q}/queues/communication/stats", headers=tokens.admin)).json()
    assert everyone["tenant_id"] is None
    assert everyone["counts"]["failed"] == 2
    only_b = await http.get(
        f"{Q}/queues/communication/stats?tenant_id={tokens.tenants.b}", headers=tokens.admin
    )
    assert only_b.json()["counts"]["failed"] == 1
    assert_problem(
        await http.get(f"{Q}/queues/communication/stats?tenant_id={tokens.tenants.b}", headers=tokens.user_a),
        403,
    )


async def test_stats_of_an_unknown_or_foreign_queue_are_404(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    await create_queue(owner, "b-private", tokens.tenants.b)
    assert_problem(await http.get(f"{Q}/queues/nothing/stats", headers=tokens.user_a), 404)
    assert_problem(await http.get(f"{Q}/queues/b-private/stats", headers=tokens.user_a), 404)
    assert (await http.get(f"{Q}/queues/b-private/stats", headers=tokens.user_b)).status_code == 200


async def test_stats_are_cached_and_the_cache_endpoints_act_on_it(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = (await http.get(f"{Q}/queues/money/stats", headers=tokens.user_a)).json()
    second = (await http.get(f"{Q}/queues/money/stats", headers=tokens.user_a)).json()
    assert (first["cached"], second["cached"]) == (False, True)
    stats = (await http.get(f"{Q}/cache/stats", headers=tokens.admin)).json()
    assert stats["name"] == "queue-stats"
    assert (stats["entries"], stats["hits"], stats["misses"]) == (1, 1, 1)
    assert stats["ttl_seconds"] == 2.0
    flushed = (await http.delete(f"{Q}/cache/flush", headers=tokens.admin)).json()
    assert flushed == {"name": "queue-stats", "flushed": 1}
    third = (await http.get(f"{Q}/queues/money/stats", headers=tokens.user_a)).json()
    assert third["cached"] is False
    for headers in (tokens.venue_a, tokens.user_a):
        assert_problem(await http.get(f"{Q}/cache/stats", headers=headers), 403)
        assert_problem(await http.delete(f"{Q}/cache/flush", headers=headers), 403)


async def test_pause_and_resume(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    paused = await http.post(f"{Q}/queues/money/pause", headers=tokens.admin)
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    row = await (await owner.execute("SELECT paused FROM jobkeeper.queues WHERE name = 'money'")).fetchone()
    assert row == (True,)
    stats = (await http.get(f"{Q}/queues/money/stats", headers=tokens.user_a)).json()
    assert stats["paused"] is True
    resumed = await http.post(f"{Q}/queues/money/resume", headers=tokens.admin)
    assert resumed.json()["paused"] is False
    assert_problem(await http.post(f"{Q}/queues/nothing/pause", headers=tokens.admin), 404)
    assert_problem(await http.post(f"{Q}/queues/money/pause", headers=tokens.venue_a), 403)


async def test_clean_deletes_finished_jobs_but_keeps_keyed_ones(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    old = [await insert_job(owner, tokens.tenants.a, status="completed", finished_ago=7200) for _ in range(3)]
    recent = await insert_job(owner, tokens.tenants.a, status="completed")
    failed = await insert_job(owner, tokens.tenants.b, status="failed", finished_ago=7200)
    keyed = await insert_job(
        owner, tokens.tenants.a, status="completed", finished_ago=7200, idempotency_key="k1"
    )
    await owner.execute(
        "INSERT INTO jobkeeper.idempotency_keys (tenant_id, key, job_id, queue, job_type, expires_at)"
        " VALUES (%s, 'k1', %s, 'communication', 'send-sms', now() + interval '1 day')",
        (tokens.tenants.a, keyed),
    )
    pending = await insert_job(owner, tokens.tenants.a)

    response = await http.delete(f"{Q}/queues/communication/clean?grace=3600&limit=2", headers=tokens.admin)
    assert response.json() == {
        "queue": "communication",
        "deleted": 2,
        "statuses": ["completed"],
        "more": True,
    }
    response = await http.delete(f"{Q}/queues/communication/clean?grace=3600", headers=tokens.admin)
    assert response.json()["deleted"] == 1
    rows = await (await owner.execute("SELECT id FROM jobkeeper.jobs")).fetchall()
    left = {row[0] for row in rows}
    assert left == {recent, failed, keyed, pending}
    assert not left & set(old)

    only_a = f"{Q}/queues/communication/clean?status=failed&tenant_id={tokens.tenants.a}"
    assert (await http.delete(only_a, headers=tokens.admin)).json()["deleted"] == 0
    assert (await http.delete(f"{Q}/queues/communication/clean?status=failed", headers=tokens.admin)).json()[
        "deleted"
    ] == 1
    assert_problem(
        await http.delete(f"{Q}/queues/communication/clean?status=pending", headers=tokens.admin),
        422,
        "query.status[0]",  # only finished statuses: the spec's enum, refused by the parameter's type
    )
    assert_problem(await http.delete(f"{Q}/queues/nothing/clean", headers=tokens.admin), 404)
    assert_problem(await http.delete(f"{Q}/queues/communication/clean", headers=tokens.venue_a), 403)
