"""Dead letters: list, show, replay one or a filtered set, purge, delete; never across tenants."""

from __future__ import annotations

import uuid

import httpx

from tests.api.support import Conn, assert_problem, dead_letter
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

DL = "/api/v1/queue/dead-letters"


async def test_list_and_show_are_per_tenant(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    a_ids = [(await dead_letter(owner, tokens.tenants.a))[1] for _ in range(3)]
    _, b_id = await dead_letter(owner, tokens.tenants.b, job_type="refund-process", queue="money")

    page = (await http.get(DL, headers=tokens.user_a)).json()
    assert {item["id"] for item in page["items"]} == {str(i) for i in a_ids}
    assert page["items"][0]["errors"][0]["type"] == "Boom"
    assert [i["id"] for i in (await http.get(DL, headers=tokens.user_b)).json()["items"]] == [str(b_id)]
    assert len((await http.get(DL, headers=tokens.admin)).json()["items"]) == 4
    only_b = (await http.get(f"{DL}?tenant_id={tokens.tenants.b}", headers=tokens.admin)).json()["items"]
    assert [i["id"] for i in only_b] == [str(b_id)]
    assert (await http.get(f"{DL}?queue=money", headers=tokens.user_a)).json()["items"] == []
    first = (await http.get(f"{DL}?limit=2", headers=tokens.user_a)).json()
    second = (await http.get(f"{DL}?limit=2&cursor={first['next_cursor']}", headers=tokens.user_a)).json()
    assert len(first["items"]) + len(second["items"]) == 3

    shown = await http.get(f"{DL}/{a_ids[0]}", headers=tokens.user_a)
    assert shown.json()["id"] == str(a_ids[0])
    assert_problem(await http.get(f"{DL}/{a_ids[0]}", headers=tokens.user_b), 404)
    assert_problem(await http.get(f"{DL}/{uuid.uuid4()}", headers=tokens.user_a), 404)


async def test_replay_one(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    job_id, dead_id = await dead_letter(owner, tokens.tenants.a)
    assert_problem(await http.post(f"{DL}/{dead_id}/replay", headers=tokens.venue_b), 404)
    response = await http.post(f"{DL}/{dead_id}/replay", headers=tokens.venue_a)
    assert response.status_code == 201, response.text
    fresh = response.json()
    assert (fresh["status"], fresh["attempts"], fresh["tenant_id"]) == ("pending", 0, str(tokens.tenants.a))
    assert fresh["id"] != str(job_id)
    shown = (await http.get(f"{DL}/{dead_id}", headers=tokens.user_a)).json()
    assert shown["replayed_job_id"] == fresh["id"]
    problem = assert_problem(await http.post(f"{DL}/{dead_id}/replay", headers=tokens.venue_a), 409)
    assert fresh["id"] in problem["detail"]
    assert_problem(await http.post(f"{DL}/{uuid.uuid4()}/replay", headers=tokens.venue_a), 404)


async def test_replay_a_filtered_set_stays_in_the_tenant(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    for _ in range(3):
        await dead_letter(owner, tokens.tenants.a)
    await dead_letter(owner, tokens.tenants.a, job_type="refund-process", queue="money")
    await dead_letter(owner, tokens.tenants.b)
    result = (
        await http.post(f"{DL}/replay", json={"type": "send-sms", "limit": 2}, headers=tokens.venue_a)
    ).json()
    assert result["replayed"] == 2
    assert all(job["tenant_id"] == str(tokens.tenants.a) for job in result["jobs"])
    rest = (await http.post(f"{DL}/replay", json={}, headers=tokens.venue_a)).json()
    assert rest["replayed"] == 2
    assert (await http.post(f"{DL}/replay", json={}, headers=tokens.venue_a)).json()["replayed"] == 0
    row = await (
        await owner.execute(
            "SELECT count(*) FROM jobkeeper.dead_letter_jobs WHERE tenant_id = %s AND replayed_at IS NULL",
            (tokens.tenants.b,),
        )
    ).fetchone()
    assert row == (1,)
    other = {"tenant_id": str(tokens.tenants.b)}
    assert_problem(await http.post(f"{DL}/replay", json=other, headers=tokens.venue_a), 403)
    assert (await http.post(f"{DL}/replay", json=other, headers=tokens.admin)).json()["replayed"] == 1


async def test_purge_and_delete(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    a = [(await dead_letter(owner, tokens.tenants.a))[1] for _ in range(3)]
    _, b = await dead_letter(owner, tokens.tenants.b)
    assert_problem(await http.post(f"{DL}/purge", json={}, headers=tokens.venue_a), 422, "body.all")
    assert_problem(await http.delete(f"{DL}/{a[0]}", headers=tokens.venue_b), 404)
    assert (await http.delete(f"{DL}/{a[0]}", headers=tokens.venue_a)).status_code == 204
    assert_problem(await http.delete(f"{DL}/{a[0]}", headers=tokens.venue_a), 404)
    purged = await http.post(f"{DL}/purge", json={"ids": [str(a[1]), str(b)]}, headers=tokens.venue_a)
    assert purged.json() == {"purged": 1}
    assert (await http.post(f"{DL}/purge", json={"all": True}, headers=tokens.venue_a)).json() == {
        "purged": 1
    }
    rows = await (await owner.execute("SELECT id FROM jobkeeper.dead_letter_jobs")).fetchall()
    assert rows == [(b,)]
    jobs = await (
        await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE status = 'failed'")
    ).fetchone()
    assert jobs == (4,), "purging dead letters keeps the failed jobs"
