"""Jobs: add, duplicate keys, batches, get, list, filter, retry, cancel; A never reaches B's jobs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from jobkeeper.api.auth import Role
from tests.api.support import Conn, assert_problem, create_queue, dead_letter, declare_types, insert_job
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

JOBS = "/api/v1/queue/jobs"
SMS = {"to": "+14155552671", "body": "hi"}
PAYMENT = {"amount": 1999, "currency": "USD", "venueId": "v1", "userId": "u1", "eventId": "e1"}


def sms(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "send-sms", "data": SMS | {"body": f"message {n}"}} | extra


async def test_add_job_answers_201_with_the_job_and_its_location(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await http.post(JOBS, json=sms(options={"priority": 9, "attempts": 7}), headers=tokens.user_a)
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"{JOBS}/{job['id']}"
    assert job["tenant_id"] == str(tokens.tenants.a)
    assert (job["queue"], job["tier"], job["status"]) == ("communication", "fast", "pending")
    assert (job["priority"], job["max_attempts"], job["deduplicated"]) == (9, 7, False)


async def test_delay_is_in_milliseconds(http: httpx.AsyncClient, tokens: Tokens) -> None:
    job = (await http.post(JOBS, json=sms(options={"delay": 90_000}), headers=tokens.user_a)).json()
    waited = datetime.fromisoformat(job["scheduled_at"]) - datetime.fromisoformat(job["created_at"])
    assert waited == timedelta(seconds=90)


async def test_a_duplicate_idempotency_key_answers_200_with_the_original(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await http.post(JOBS, json=sms(1, idempotency_key="order-42"), headers=tokens.user_a)
    again = await http.post(JOBS, json=sms(2, idempotency_key="order-42"), headers=tokens.user_a)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["deduplicated"] is True
    assert again.json()["data"]["body"] == "message 1"
    # Keys are per tenant: B's identical key is B's own job.
    other = await http.post(JOBS, json=sms(3, idempotency_key="order-42"), headers=tokens.user_b)
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]


async def test_money_jobs_derive_their_key_and_need_a_durable_queue(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await http.post(JOBS, json={"type": "payment-process", "data": PAYMENT}, headers=tokens.user_a)
    again = await http.post(JOBS, json={"type": "payment-process", "data": PAYMENT}, headers=tokens.user_a)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["queue"] == "money"
    assert first.json()["idempotency_key"] == "payment:v1:u1:e1:1999"
    body = {"type": "payment-process", "queue": "background", "data": PAYMENT | {"orderId": "o-9"}}
    problem = assert_problem(await http.post(JOBS, json=body, headers=tokens.user_a), 422, "body.queue")
    assert "durable" in problem["detail"]


async def test_queues_must_exist_and_be_visible_to_the_tenant(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    problem = assert_problem(
        await http.post(JOBS, json=sms(queue="mony"), headers=tokens.user_a), 422, "body.queue"
    )
    assert "money" in problem["detail"]
    await create_queue(owner, "b-private", tokens.tenants.b)
    assert_problem(
        await http.post(JOBS, json=sms(queue="b-private"), headers=tokens.user_a), 422, "body.queue"
    )
    response = await http.post(JOBS, json=sms(queue="b-private"), headers=tokens.user_b)
    assert response.status_code == 201, response.text


async def test_only_platform_admins_act_for_another_tenant(http: httpx.AsyncClient, tokens: Tokens) -> None:
    body = sms(tenant_id=str(tokens.tenants.b))
    assert_problem(await http.post(JOBS, json=body, headers=tokens.venue_a), 403)
    response = await http.post(JOBS, json=body, headers=tokens.admin)
    assert response.status_code == 201
    assert response.json()["tenant_id"] == str(tokens.tenants.b)
    unknown = sms(tenant_id=str(uuid.uuid4()))
    assert_problem(await http.post(JOBS, json=unknown, headers=tokens.admin), 422, "body.tenant_id")


async def test_batch_is_all_or_nothing_and_at_most_100(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    response = await http.post(
        f"{JOBS}/batch", json={"jobs": [sms(n) for n in range(100)]}, headers=tokens.venue_a
    )
    assert response.status_code == 201, response.text
    assert (response.json()["created"], response.json()["deduplicated"]) == (100, 0)
    too_many = {"jobs": [sms(n) for n in range(101)]}
    assert_problem(await http.post(f"{JOBS}/batch", json=too_many, headers=tokens.venue_a), 422, "body.jobs")
    bad = {"jobs": [sms(1), sms(2), {"type": "send-sms", "data": {"to": "nope", "body": "x"}}]}
    assert_problem(
        await http.post(f"{JOBS}/batch", json=bad, headers=tokens.venue_a), 422, "body.jobs[2].data.to"
    )
    row = await (await owner.execute("SELECT count(*) FROM jobkeeper.jobs")).fetchone()
    assert row == (100,)
    keyed = {"jobs": [sms(n, idempotency_key=f"k{n}") for n in range(3)]}
    assert (await http.post(f"{JOBS}/batch", json=keyed, headers=tokens.venue_a)).status_code == 201
    repeat = await http.post(f"{JOBS}/batch", json=keyed, headers=tokens.venue_a)
    assert repeat.status_code == 200
    assert repeat.json()["deduplicated"] == 3


async def test_get_job_and_cross_tenant_404(http: httpx.AsyncClient, tokens: Tokens) -> None:
    job = (await http.post(JOBS, json=sms(), headers=tokens.user_a)).json()
    found = await http.get(f"{JOBS}/{job['id']}", headers=tokens.user_a)
    assert found.status_code == 200
    assert found.json()["errors"] == []
    assert_problem(await http.get(f"{JOBS}/{job['id']}", headers=tokens.user_b), 404)
    assert_problem(await http.get(f"{JOBS}/{job['id']}", headers=tokens.venue_b), 404)
    assert_problem(await http.get(f"{JOBS}/{uuid.uuid4()}", headers=tokens.user_a), 404)
    assert (await http.get(f"{JOBS}/{job['id']}", headers=tokens.admin)).status_code == 200


async def _ids(http: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> list[str]:
    response = await http.get(f"{JOBS}{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_list_filters_and_isolation(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    await declare_types(http, tokens.admin, "ticket-issued")
    order = {"type": "ticket-issued", "data": {"orderId": "o-1", "seats": 2}}
    a_sms = (await http.post(JOBS, json=order, headers=tokens.user_a)).json()
    a_pay = (
        await http.post(JOBS, json={"type": "payment-process", "data": PAYMENT}, headers=tokens.user_a)
    ).json()
    b_sms = (await http.post(JOBS, json=order, headers=tokens.user_b)).json()
    failed = await insert_job(owner, tokens.tenants.a, status="failed")

    assert set(await _ids(http, tokens.user_a)) == {a_sms["id"], a_pay["id"], str(failed)}
    assert await _ids(http, tokens.user_b) == [b_sms["id"]]
    assert await _ids(http, tokens.user_a, "?type=payment-process") == [a_pay["id"]]
    assert await _ids(http, tokens.user_a, "?payload=%7B%22seats%22%3A2%7D") == [a_sms["id"]]
    assert await _ids(http, tokens.user_a, "?queue=money") == [a_pay["id"]]
    assert await _ids(http, tokens.user_a, "?status=failed") == [str(failed)]
    assert set(await _ids(http, tokens.user_a, "?status=failed&status=pending")) == {
        a_sms["id"],
        a_pay["id"],
        str(failed),
    }
    assert await _ids(http, tokens.user_a, "?payload.orderId=o-1") == [a_sms["id"]]
    assert await _ids(http, tokens.user_a, "?payload=%7B%22amount%22%3A1999%7D") == [a_pay["id"]]
    assert await _ids(http, tokens.user_a, "?payload.orderId=o-2") == []
    since = a_sms["created_at"].replace("+00:00", "Z")
    assert a_sms["id"] in await _ids(http, tokens.user_a, f"?created_after={since}")
    assert a_sms["id"] not in await _ids(http, tokens.user_a, f"?created_before={since}")
    # Platform admins see every tenant, or one.
    assert set(await _ids(http, tokens.admin, "?payload.orderId=o-1")) == {a_sms["id"], b_sms["id"]}
    assert await _ids(http, tokens.admin, f"?payload.orderId=o-1&tenant_id={tokens.tenants.b}") == [
        b_sms["id"]
    ]
    assert_problem(await http.get(f"{JOBS}?tenant_id={tokens.tenants.b}", headers=tokens.user_a), 403)
    assert_problem(await http.get(f"{JOBS}?payload=[1]", headers=tokens.user_a), 422, "query.payload")
    assert_problem(await http.get(f"{JOBS}?payload.__proto__=x", headers=tokens.user_a), 422)
    assert_problem(await http.get(f"{JOBS}?created_after=2026-01-01T00:00:00", headers=tokens.user_a), 422)


async def test_list_pages_with_a_cursor(http: httpx.AsyncClient, tokens: Tokens) -> None:
    await http.post(f"{JOBS}/batch", json={"jobs": [sms(n) for n in range(7)]}, headers=tokens.venue_a)
    seen: list[str] = []
    cursor = None
    while True:
        query = f"?limit=3&cursor={cursor}" if cursor else "?limit=3"
        page = (await http.get(f"{JOBS}{query}", headers=tokens.user_a)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert_problem(await http.get(f"{JOBS}?cursor=garbage", headers=tokens.user_a), 422, "query.cursor")


async def test_retry_puts_a_failed_job_back_and_marks_its_dead_letter(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    job_id, dead_id = await dead_letter(owner, tokens.tenants.a)
    assert_problem(await http.post(f"{JOBS}/{job_id}/retry", headers=tokens.venue_b), 404)
    response = await http.post(f"{JOBS}/{job_id}/retry", headers=tokens.venue_a)
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["attempts"], job["completed_at"]) == ("pending", 0, None)
    assert job["errors"], "the error history is kept"
    row = await (
        await owner.execute(
            "SELECT replayed_at IS NOT NULL, replayed_job_id FROM jobkeeper.dead_letter_jobs WHERE id = %s",
            (dead_id,),
        )
    ).fetchone()
    assert row == (True, job_id)
    problem = assert_problem(await http.post(f"{JOBS}/{job_id}/retry", headers=tokens.venue_a), 409)
    assert "pending" in problem["detail"]
    assert_problem(await http.post(f"{JOBS}/{uuid.uuid4()}/retry", headers=tokens.venue_a), 404)


async def test_retry_a_cancelled_job(http: httpx.AsyncClient, tokens: Tokens) -> None:
    job = (await http.post(JOBS, json=sms(), headers=tokens.user_a)).json()
    assert (await http.delete(f"{JOBS}/{job['id']}", headers=tokens.venue_a)).json()["status"] == "cancelled"
    retried = await http.post(f"{JOBS}/{job['id']}/retry", headers=tokens.venue_a)
    assert retried.json()["status"] == "pending"


async def test_cancel(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    job = (await http.post(JOBS, json=sms(), headers=tokens.user_a)).json()
    assert_problem(await http.delete(f"{JOBS}/{job['id']}", headers=tokens.venue_b), 404)
    assert (await http.get(f"{JOBS}/{job['id']}", headers=tokens.user_a)).json()["status"] == "pending"
    cancelled = await http.delete(f"{JOBS}/{job['id']}", headers=tokens.venue_a)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (await http.delete(f"{JOBS}/{job['id']}", headers=tokens.venue_a)).status_code == 200

    running = await insert_job(owner, tokens.tenants.a, status="processing")
    asked = await http.delete(f"{JOBS}/{running}", headers=tokens.venue_a)
    assert (asked.status_code, asked.json()["status"]) == (202, "processing")
    row = await (
        await owner.execute("SELECT cancel_requested FROM jobkeeper.jobs WHERE id = %s", (running,))
    ).fetchone()
    assert row == (True,)

    done = await insert_job(owner, tokens.tenants.a, status="completed")
    assert_problem(await http.delete(f"{JOBS}/{done}", headers=tokens.venue_a), 409)
    assert_problem(await http.delete(f"{JOBS}/{uuid.uuid4()}", headers=tokens.admin), 404)


async def test_tenant_b_cannot_change_tenant_a_jobs(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    pending = uuid.UUID((await http.post(JOBS, json=sms(), headers=tokens.user_a)).json()["id"])
    failed, _ = await dead_letter(owner, tokens.tenants.a)
    for headers in (tokens.venue_b, tokens.headers(Role.VENUE_ADMIN, tokens.tenants.b, "someone-else")):
        assert_problem(await http.delete(f"{JOBS}/{pending}", headers=headers), 404)
        assert_problem(await http.post(f"{JOBS}/{failed}/retry", headers=headers), 404)
    rows = await (
        await owner.execute(
            "SELECT status FROM jobkeeper.jobs WHERE id = ANY(%s) ORDER BY status", ([pending, failed],)
        )
    ).fetchall()
    assert rows == [("failed",), ("pending",)]
