"""Alerts: list, show, acknowledge; a tenant sees its own, platform alerts are for platform admins."""

from __future__ import annotations

import uuid

import httpx

from tests.api.support import Conn, assert_problem, insert_alert
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

A = "/api/v1/queue/alerts"


async def test_list_show_and_isolation(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    mine = await insert_alert(owner, tokens.tenants.a, severity="critical", rule="dead-money-jobs")
    theirs = await insert_alert(owner, tokens.tenants.b)
    platform = await insert_alert(owner, None, rule="no-workers")

    assert [a["id"] for a in (await http.get(A, headers=tokens.user_a)).json()["items"]] == [str(mine)]
    assert [a["id"] for a in (await http.get(A, headers=tokens.user_b)).json()["items"]] == [str(theirs)]
    everything = {a["id"] for a in (await http.get(A, headers=tokens.admin)).json()["items"]}
    assert everything == {str(mine), str(theirs), str(platform)}
    assert (await http.get(f"{A}?severity=warning", headers=tokens.user_a)).json()["items"] == []
    critical = (await http.get(f"{A}?severity=critical&rule=dead-money-jobs", headers=tokens.user_a)).json()
    assert [a["id"] for a in critical["items"]] == [str(mine)]
    assert_problem(await http.get(f"{A}?tenant_id={tokens.tenants.b}", headers=tokens.user_a), 403)

    shown = (await http.get(f"{A}/{mine}", headers=tokens.user_a)).json()
    assert (shown["severity"], shown["queue"], shown["acknowledged_at"]) == ("critical", "money", None)
    assert_problem(await http.get(f"{A}/{theirs}", headers=tokens.user_a), 404)
    assert_problem(await http.get(f"{A}/{platform}", headers=tokens.user_a), 404)
    assert (await http.get(f"{A}/{platform}", headers=tokens.admin)).status_code == 200
    assert_problem(await http.get(f"{A}/{uuid.uuid4()}", headers=tokens.admin), 404)


async def test_acknowledge(http: httpx.AsyncClient, tokens: Tokens, owner: Conn) -> None:
    mine = await insert_alert(owner, tokens.tenants.a)
    platform = await insert_alert(owner, None)
    assert_problem(await http.post(f"{A}/{mine}/acknowledge", headers=tokens.user_a), 403)
    assert_problem(await http.post(f"{A}/{mine}/acknowledge", headers=tokens.venue_b), 404)
    assert_problem(await http.post(f"{A}/{platform}/acknowledge", headers=tokens.venue_a), 404)

    acked = (await http.post(f"{A}/{mine}/acknowledge", headers=tokens.venue_a)).json()
    assert acked["acknowledged_by"] == f"venue_admin-{tokens.tenants.a}"
    assert acked["acknowledged_at"] is not None
    again = (await http.post(f"{A}/{mine}/acknowledge", headers=tokens.admin)).json()
    assert (again["acknowledged_by"], again["acknowledged_at"]) == (
        acked["acknowledged_by"],
        acked["acknowledged_at"],
    )
    open_alerts = (await http.get(f"{A}?acknowledged=false", headers=tokens.user_a)).json()["items"]
    assert open_alerts == []
    assert (await http.post(f"{A}/{platform}/acknowledge", headers=tokens.admin)).status_code == 200
