"""Job dependencies over HTTP: depends_on at enqueue, the waiting status, precise refusals, cancel."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.support import Conn, assert_problem
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

JOBS = "/api/v1/queue/jobs"
SMS = {"to": "+14155552671", "body": "hi"}


def sms(**extra: Any) -> dict[str, Any]:
    return {"type": "send-sms", "data": SMS} | extra


async def _add(http: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = await http.post(JOBS, json=sms(**extra), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_job_with_unfinished_parents_is_waiting_and_listed_by_status(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    parent = await _add(http, tokens.user_a, options={"delay": 60_000})
    child = await _add(http, tokens.user_a, depends_on=[parent["id"]])
    assert child["status"] == "waiting"

    got = (await http.get(f"{JOBS}/{child['id']}", headers=tokens.user_a)).json()
    assert (got["status"], got["depends_on"]) == ("waiting", [parent["id"]])
    assert (await http.get(f"{JOBS}/{parent['id']}", headers=tokens.user_a)).json()["depends_on"] == []

    listed = (await http.get(f"{JOBS}?status=waiting", headers=tokens.user_a)).json()
    assert [item["id"] for item in listed["items"]] == [child["id"]]
    stats = (await http.get("/api/v1/queue/queues/communication/stats", headers=tokens.user_a)).json()
    assert stats["counts"]["awaiting_dependencies"] == 1


async def test_unknown_and_other_tenant_parents_are_a_422_naming_the_id(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    theirs = await _add(http, tokens.user_b)
    unknown = str(uuid.uuid4())

    for parent in (unknown, theirs["id"]):
        problem = assert_problem(
            await http.post(JOBS, json=sms(depends_on=[parent]), headers=tokens.user_a),
            422,
            "body.depends_on",
        )
        (error,) = problem["errors"]
        expected = f"no job {parent} for this tenant (unknown id or another tenant's job)"
        assert error["reason"] == expected, error

    batch = {"jobs": [sms(), sms(depends_on=[unknown])]}
    assert_problem(
        await http.post(f"{JOBS}/batch", json=batch, headers=tokens.venue_a), 422, "body.jobs[1].depends_on"
    )
    assert_problem(await http.post(JOBS, json=sms(depends_on=["not-a-uuid"]), headers=tokens.user_a), 422)
    assert_problem(
        await http.post(
            JOBS, json=sms(depends_on=[str(uuid.uuid4()) for _ in range(101)]), headers=tokens.user_a
        ),
        422,
        "body.depends_on",
    )
    # Nothing of the refused requests was stored.
    cur = await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE tenant_id = %s", (tokens.tenants.a,))
    assert await cur.fetchone() == (0,)


async def test_a_batch_may_name_its_earlier_jobs_by_index(http: httpx.AsyncClient, tokens: Tokens) -> None:
    batch = {"jobs": [sms(), sms(), sms(depends_on=[0, 1]), sms(depends_on=[2])]}
    response = await http.post(f"{JOBS}/batch", json=batch, headers=tokens.venue_a)
    assert response.status_code == 201, response.text
    jobs = response.json()["jobs"]
    assert [job["status"] for job in jobs] == ["pending", "pending", "waiting", "waiting"]
    got = (await http.get(f"{JOBS}/{jobs[2]['id']}", headers=tokens.venue_a)).json()
    assert sorted(got["depends_on"]) == sorted([jobs[0]["id"], jobs[1]["id"]])

    forward = {"jobs": [sms(depends_on=[1]), sms()]}
    problem = assert_problem(
        await http.post(f"{JOBS}/batch", json=forward, headers=tokens.venue_a), 422, "body.jobs[0].depends_on"
    )
    assert "not the index of an earlier job" in problem["errors"][0]["reason"]


async def test_cancelling_a_parent_cancels_its_waiting_children(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    parent = await _add(http, tokens.user_a, options={"delay": 60_000})
    child = await _add(http, tokens.user_a, depends_on=[parent["id"]])
    grandchild = await _add(http, tokens.user_a, depends_on=[child["id"]])

    response = await http.delete(f"{JOBS}/{parent['id']}", headers=tokens.venue_a)
    assert response.status_code == 200, response.text
    for job, cause in ((child, parent), (grandchild, child)):
        got = (await http.get(f"{JOBS}/{job['id']}", headers=tokens.user_a)).json()
        assert (got["status"], got["last_error"]) == ("cancelled", f"dependency {cause['id']} was cancelled")


async def test_a_waiting_job_can_be_cancelled(http: httpx.AsyncClient, tokens: Tokens) -> None:
    parent = await _add(http, tokens.user_a, options={"delay": 60_000})
    child = await _add(http, tokens.user_a, depends_on=[parent["id"]])
    response = await http.delete(f"{JOBS}/{child['id']}", headers=tokens.venue_a)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    got = (await http.get(f"{JOBS}/{parent['id']}", headers=tokens.user_a)).json()
    assert got["status"] == "pending"
