"""Schedules: create (cron checked, next run computed), list, show, update, pause, resume, delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from jobkeeper import cron
from jobkeeper.server import create_app
from tests.api.support import Conn, api_settings, assert_problem, running
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

S = "/api/v1/queue/schedules"
NIGHTLY: dict[str, Any] = {
    "name": "nightly-report",
    "cron": "0 3 * * *",
    "timezone": "Europe/Paris",
    "type": "generate-report",
    "data": {"hours": 24, "bucket": "hour"},
}


async def _create(http: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await http.post(S, json=NIGHTLY | changes, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"{S}/{body['id']}"
    return body


async def test_create_computes_the_next_run(http: httpx.AsyncClient, tokens: Tokens) -> None:
    schedule = await _create(http, tokens.venue_a)
    assert (schedule["queue"], schedule["type"], schedule["active"]) == (
        "background",
        "generate-report",
        True,
    )
    created = datetime.fromisoformat(schedule["created_at"])
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    assert next_run == cron.next_fire("0 3 * * *", "Europe/Paris", created)
    assert next_run.astimezone(UTC).hour in (1, 2)  # 03:00 in Paris
    assert schedule["tenant_id"] == str(tokens.tenants.a)


async def test_create_validates(http: httpx.AsyncClient, tokens: Tokens) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cron": "61 * * * *"}, "body.cron"),
        ({"cron": "* * * * * * *"}, "body.cron"),
        ({"cron": "0 0 31 2 *"}, "body.cron"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"data": {"bucket": "week"}}, "body.data.bucket"),
        ({"data": {"tenant": "all"}}, "403"),
        ({"queue": "nothing"}, "body.queue"),
        ({"priority": 0}, "body.priority"),
        ({"missed_policy": "sometimes"}, "body.missed_policy"),
        ({"type": "payment-process", "queue": "background", "data": {}}, "body.queue"),
        ({"type": "no-such-type", "data": {}}, "body.type"),
        ({"type": "generate-reprot"}, "body.type"),
    ]
    for changes, field in cases:
        response = await http.post(S, json=NIGHTLY | changes, headers=tokens.venue_a)
        if field == "403":
            assert_problem(response, 403)
        else:
            assert_problem(response, 422, field)
    await _create(http, tokens.venue_a)
    problem = assert_problem(await http.post(S, json=NIGHTLY, headers=tokens.venue_a), 409)
    assert "nightly-report" in problem["detail"]
    await _create(http, tokens.venue_b)  # names are unique per tenant only
    assert_problem(await http.post(S, json=NIGHTLY, headers=tokens.user_a), 403)


async def test_list_and_show_are_per_tenant(http: httpx.AsyncClient, tokens: Tokens) -> None:
    a1 = await _create(http, tokens.venue_a)
    a2 = await _create(http, tokens.venue_a, name="hourly", cron="0 * * * *", active=False)
    b1 = await _create(http, tokens.venue_b)
    names = [s["name"] for s in (await http.get(S, headers=tokens.user_a)).json()["items"]]
    assert names == ["hourly", "nightly-report"]
    assert [s["id"] for s in (await http.get(f"{S}?active=true", headers=tokens.user_a)).json()["items"]] == [
        a1["id"]
    ]
    assert [s["id"] for s in (await http.get(S, headers=tokens.user_b)).json()["items"]] == [b1["id"]]
    assert len((await http.get(S, headers=tokens.admin)).json()["items"]) == 3
    page = (await http.get(f"{S}?limit=1", headers=tokens.user_a)).json()
    rest = (await http.get(f"{S}?limit=1&cursor={page['next_cursor']}", headers=tokens.user_a)).json()
    assert [page["items"][0]["id"], rest["items"][0]["id"]] == [a2["id"], a1["id"]]
    assert a2["next_run_at"] is None
    assert (await http.get(f"{S}/{a1['id']}", headers=tokens.user_a)).json()["name"] == "nightly-report"
    assert_problem(await http.get(f"{S}/{a1['id']}", headers=tokens.user_b), 404)
    assert_problem(await http.get(f"{S}/{uuid.uuid4()}", headers=tokens.user_a), 404)


async def test_update_pause_resume(http: httpx.AsyncClient, tokens: Tokens) -> None:
    schedule = await _create(http, tokens.venue_a)
    path = f"{S}/{schedule['id']}"
    changed = (
        await http.patch(path, json={"cron": "30 4 * * 1", "timezone": "UTC"}, headers=tokens.venue_a)
    ).json()
    next_run = datetime.fromisoformat(changed["next_run_at"])
    assert (next_run.hour, next_run.minute, next_run.weekday()) == (4, 30, 0)
    assert changed["data"] == {"hours": 24, "bucket": "hour"}
    assert_problem(
        await http.patch(path, json={"data": {"hours": 0}}, headers=tokens.venue_a),
        422,
        "body.data.hours",
    )
    assert_problem(await http.patch(path, json={"name": None}, headers=tokens.venue_a), 422, "body.name")
    assert_problem(
        await http.patch(path, json={"cron": "bad cron x"}, headers=tokens.venue_a), 422, "body.cron"
    )

    paused = (await http.post(f"{path}/pause", headers=tokens.venue_a)).json()
    assert (paused["active"], paused["next_run_at"]) == (False, None)
    resumed = (await http.post(f"{path}/resume", headers=tokens.venue_a)).json()
    assert resumed["active"] is True
    assert datetime.fromisoformat(resumed["next_run_at"]) == next_run

    await _create(http, tokens.venue_a, name="other")
    assert_problem(await http.patch(path, json={"name": "other"}, headers=tokens.venue_a), 409)
    assert_problem(await http.patch(path, json={"active": False}, headers=tokens.user_a), 403)


async def test_tenant_b_cannot_change_or_delete_tenant_a_schedules(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    schedule = await _create(http, tokens.venue_a)
    path = f"{S}/{schedule['id']}"
    assert_problem(await http.patch(path, json={"active": False}, headers=tokens.venue_b), 404)
    assert_problem(await http.post(f"{path}/pause", headers=tokens.venue_b), 404)
    assert_problem(await http.post(f"{path}/resume", headers=tokens.venue_b), 404)
    assert_problem(await http.delete(path, headers=tokens.venue_b), 404)
    row = await (
        await owner.execute(
            "SELECT active FROM jobkeeper.schedules WHERE id = %s", (uuid.UUID(schedule["id"]),)
        )
    ).fetchone()
    assert row == (True,)
    assert (await http.delete(path, headers=tokens.venue_a)).status_code == 204
    assert_problem(await http.delete(path, headers=tokens.venue_a), 404)


async def test_a_tenant_admin_may_not_schedule_faster_than_the_minimum_interval(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    for expression in ("* * * * * *", "*/30 * * * * *", "0,30 * * * * *"):
        problem = assert_problem(
            await http.post(S, json=NIGHTLY | {"cron": expression}, headers=tokens.venue_a), 422, "body.cron"
        )
        assert "minimum interval of 60 s" in problem["detail"]
    every_minute = await _create(http, tokens.venue_a, cron="* * * * *")
    # A change of cadence is held to it too; other changes of a fast schedule are not.
    problem = assert_problem(
        await http.patch(
            f"{S}/{every_minute['id']}", json={"cron": "*/10 * * * * *"}, headers=tokens.venue_a
        ),
        422,
        "body.cron",
    )
    assert "fires 10 s apart" in problem["detail"]
    # A platform admin is exempt.
    fast = await _create(http, tokens.admin, name="heartbeat", cron="*/10 * * * * *")
    renamed = await http.patch(f"{S}/{fast['id']}", json={"name": "heartbeat-2"}, headers=tokens.venue_a)
    assert renamed.status_code == 200, renamed.text


async def test_a_tenant_may_have_at_most_its_cap_of_schedules(db_url: str, tokens: Tokens) -> None:
    settings = api_settings(schedules_per_tenant=3)
    async with running(create_app(settings, db_url)) as http:
        created = [await _create(http, tokens.venue_a, name=f"s{n}") for n in range(3)]
        problem = assert_problem(await http.post(S, json=NIGHTLY, headers=tokens.venue_a), 409)
        assert "has 3 schedules, the most allowed (JOBKEEPER_SCHEDULES_PER_TENANT)" in problem["detail"]
        await _create(http, tokens.venue_b)  # the cap is per tenant
        assert (await http.delete(f"{S}/{created[0]['id']}", headers=tokens.venue_a)).status_code == 204
        await _create(http, tokens.venue_a)
