"""Invalid input answers 4xx problem+json naming the field, on every endpoint that takes input; never 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.endpoints import ENDPOINTS
from tests.api.support import Conn, assert_problem, create_queue, declare_types
from tests.fixtures import Tokens
from tests.payloads import INVALID, PHONE, VALID

JOBS = "/api/v1/queue/jobs"
TYPES = "/api/v1/queue/types"


async def test_every_endpoint_with_input_answers_422_naming_the_field(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    checked = 0
    for endpoint in ENDPOINTS:
        if endpoint.invalid is None:
            continue
        path, body, field = endpoint.invalid
        response = await http.request(endpoint.method, path, json=body, headers=tokens.admin)
        assert_problem(response, 422, field)
        checked += 1
    assert checked >= 25


@pytest.mark.parametrize("job_type", sorted(VALID))
async def test_each_built_in_type_accepts_a_valid_payload(
    http: httpx.AsyncClient, tokens: Tokens, job_type: str
) -> None:
    response = await http.post(JOBS, json={"type": job_type, "data": VALID[job_type]}, headers=tokens.user_a)
    assert response.status_code == 201, response.text
    assert response.json()["data"] == VALID[job_type]


@pytest.mark.parametrize(("job_type", "data", "field"), INVALID, ids=[f"{t}:{f}" for t, _, f in INVALID])
async def test_each_built_in_type_rejects_invalid_payloads(
    http: httpx.AsyncClient, tokens: Tokens, job_type: str, data: dict[str, Any], field: str
) -> None:
    response = await http.post(JOBS, json={"type": job_type, "data": data}, headers=tokens.user_a)
    assert_problem(response, 422, field)


async def test_job_types_that_reach_beyond_one_tenant_are_for_platform_admins(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    cleanup = {"type": "cleanup-old-data", "data": {"finished_jobs": 86400}}
    assert_problem(await http.post(JOBS, json=cleanup, headers=tokens.venue_a), 403)
    assert (await http.post(JOBS, json=cleanup, headers=tokens.admin)).status_code == 201
    too_short = {"type": "cleanup-old-data", "data": {"finished_jobs": 60}}
    assert_problem(
        await http.post(JOBS, json=too_short, headers=tokens.admin), 422, "body.data.finished_jobs"
    )
    everyone = {"type": "generate-report", "data": {"tenant": "all"}}
    assert_problem(await http.post(JOBS, json=everyone, headers=tokens.venue_a), 403)
    other = {"type": "generate-report", "data": {"tenant": str(tokens.tenants.b)}}
    assert_problem(await http.post(JOBS, json=other, headers=tokens.user_a), 403)
    own = {"type": "generate-report", "data": {"tenant": str(tokens.tenants.a)}}
    assert (await http.post(JOBS, json=own, headers=tokens.user_a)).status_code == 201
    assert (await http.post(JOBS, json=everyone, headers=tokens.admin)).status_code == 201


async def test_snake_case_fields_are_pointed_to_their_camel_case_names(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    data = VALID["payment-process"] | {"order_id": "o-1"}
    body = assert_problem(
        await http.post(JOBS, json={"type": "payment-process", "data": data}, headers=tokens.user_a), 422
    )
    assert "did you mean 'orderId'" in body["errors"][0]["reason"]


async def test_keys_beginning_with_two_underscores_are_refused_at_any_depth(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    for data, field in [
        ({"__proto__": {"admin": True}}, "body.data.__proto__"),
        ({"a": [{"b": {"__class__": 1}}]}, "body.data.a[0].b.__class__"),
    ]:
        response = await http.post(JOBS, json={"type": "my-own-type", "data": data}, headers=tokens.user_a)
        assert_problem(response, 422, field)
    nested = {"metadata": {"__proto__": "x"}}
    body = VALID["nft-mint"] | nested
    assert_problem(
        await http.post(JOBS, json={"type": "nft-mint", "data": body}, headers=tokens.user_a),
        422,
        "body.data.metadata.__proto__",
    )


async def test_unknown_fields_of_the_request_itself_are_refused(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = {"type": "send-sms", "data": VALID["send-sms"], "opts": {}}
    assert_problem(await http.post(JOBS, json=body, headers=tokens.user_a), 422, "body.opts")
    body = {"type": "send-sms", "data": VALID["send-sms"], "options": {"delay": 5, "backoff": 2}}
    assert_problem(await http.post(JOBS, json=body, headers=tokens.user_a), 422, "body.options.backoff")


async def test_options_are_checked(http: httpx.AsyncClient, tokens: Tokens) -> None:
    for options, field in [
        ({"priority": 0}, "body.options.priority"),
        ({"priority": 11}, "body.options.priority"),
        ({"priority": "5"}, "body.options.priority"),
        ({"attempts": 0}, "body.options.attempts"),
        ({"delay": -1}, "body.options.delay"),
        ({"delay": 1.5}, "body.options.delay"),
    ]:
        body = {"type": "send-sms", "data": VALID["send-sms"], "options": options}
        assert_problem(await http.post(JOBS, json=body, headers=tokens.user_a), 422, field)


async def test_strings_are_stored_verbatim(http: httpx.AsyncClient, tokens: Tokens) -> None:
    hostile = "<script>alert(1)</script>'; DROP TABLE jobkeeper.jobs; -- SELECT * FROM users"
    body = {"type": "send-sms", "data": {"to": PHONE, "body": hostile}}
    created = await http.post(JOBS, json=body, headers=tokens.user_a)
    assert created.status_code == 201, created.text
    fetched = await http.get(f"{JOBS}/{created.json()['id']}", headers=tokens.user_a)
    assert fetched.json()["data"]["body"] == hostile


async def test_malformed_json_is_400_with_the_position(http: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.user_a | {"content-type": "application/json"}
    response = await http.post(JOBS, content=b'{"type": "send-sms", "data": {', headers=headers)
    body = assert_problem(response, 400, "body")
    assert "position 30" in body["detail"]
    response = await http.post(JOBS, content=b"[1, 2", headers=headers)
    assert_problem(response, 400)


async def test_a_body_that_is_not_an_object_is_422(http: httpx.AsyncClient, tokens: Tokens) -> None:
    await declare_types(http, tokens.admin, "x")
    assert_problem(await http.post(JOBS, json=[1, 2, 3], headers=tokens.user_a), 422)
    assert_problem(
        await http.post(JOBS, json={"type": "x", "data": [1]}, headers=tokens.user_a), 422, "body.data"
    )
    headers = tokens.user_a | {"content-type": "application/json"}
    infinite = b'{"type": "x", "data": {"n": Infinity}}'
    assert_problem(await http.post(JOBS, content=infinite, headers=headers), 422, "body.data")


async def test_payload_and_body_size_limits_answer_413(http: httpx.AsyncClient, tokens: Tokens) -> None:
    await declare_types(http, tokens.admin, "my-own-type")
    big = {"type": "my-own-type", "data": {"blob": "x" * (256 * 1024)}}
    body = assert_problem(await http.post(JOBS, json=big, headers=tokens.user_a), 413, "body.data")
    assert "262144" in body["detail"]
    huge = b'{"type": "x", "data": {"blob": "' + b"y" * (5 * 1024 * 1024) + b'"}}'
    headers = tokens.user_a | {"content-type": "application/json"}
    assert_problem(await http.post(JOBS, content=huge, headers=headers), 413)

    async def chunks() -> Any:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    # A chunked body with no Content-Length is cut off as it arrives.
    assert_problem(await http.post(JOBS, content=chunks(), headers=headers), 413)


async def test_nesting_is_bounded(http: httpx.AsyncClient, tokens: Tokens) -> None:
    deep: Any = "bottom"
    for _ in range(40):
        deep = {"d": deep}
    response = await http.post(JOBS, json={"type": "my-own-type", "data": deep}, headers=tokens.user_a)
    assert_problem(response, 422)
    deeper = b'{"type": "x", "data": ' + b'{"d": ' * 100_000 + b"1" + b"}" * 100_001
    headers = tokens.user_a | {"content-type": "application/json"}
    response = await http.post(JOBS, content=deeper, headers=headers)
    assert 400 <= response.status_code < 500


async def test_unknown_routes_and_methods_are_problems(http: httpx.AsyncClient, tokens: Tokens) -> None:
    assert_problem(await http.get("/api/v1/queue/nothing-here", headers=tokens.user_a), 404)
    assert_problem(await http.put(JOBS, headers=tokens.user_a), 405)


async def test_unknown_job_types_are_refused_with_a_did_you_mean(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    typo = {"type": "generate-reprot", "data": {}}
    body = assert_problem(await http.post(JOBS, json=typo, headers=tokens.user_a), 422, "body.type")
    assert "did you mean 'generate-report'" in body["errors"][0]["reason"]
    batch = {"jobs": [{"type": "generate-report", "data": {}}, {"type": "no-such-type", "data": {}}]}
    assert_problem(
        await http.post(f"{JOBS}/batch", json=batch, headers=tokens.venue_a), 422, "body.jobs[1].type"
    )


async def test_a_declared_type_is_accepted(http: httpx.AsyncClient, tokens: Tokens) -> None:
    own = {"type": "video-transcode", "data": {"file": "a.mp4"}}
    assert_problem(await http.post(JOBS, json=own, headers=tokens.user_a), 422, "body.type")
    assert_problem(await http.post(TYPES, json={"name": "video-transcode"}, headers=tokens.venue_a), 403)
    declared = await http.post(
        TYPES, json={"name": "video-transcode", "queue": "money"}, headers=tokens.admin
    )
    assert declared.status_code == 201, declared.text
    assert declared.json() == {
        "name": "video-transcode",
        "queue": "money",
        "max_attempts": None,
        "priority": None,
        "builtin": False,
    }
    again = await http.post(TYPES, json={"name": "video-transcode"}, headers=tokens.admin)
    assert (again.status_code, again.json()["queue"]) == (200, "money")
    created = await http.post(JOBS, json=own, headers=tokens.user_a)
    assert (created.status_code, created.json()["queue"]) == (201, "money"), created.text
    listed = (await http.get(TYPES, headers=tokens.admin)).json()["items"]
    assert {t["name"]: t["builtin"] for t in listed}["video-transcode"] is False
    assert {t["name"]: t["builtin"] for t in listed}["send-email"] is True


async def test_a_declaration_needs_a_shared_queue_fit_for_the_type(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    await create_queue(owner, "a-private", tokens.tenants.a)
    for body, field in [
        ({"name": "x", "queue": "a-private"}, "body.queue"),
        ({"name": "x", "queue": "nothing"}, "body.queue"),
        ({"name": "payment-process", "queue": "background"}, "body.queue"),
        ({"name": "x" * 201}, "body.name"),
        ({"name": "x", "tier": "durable"}, "body.tier"),
    ]:
        assert_problem(await http.post(TYPES, json=body, headers=tokens.admin), 422, field)


async def test_only_platform_admins_are_pointed_to_types_workers_registered(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    # A type that one tenant's worker registered is a name other tenants must not learn.
    await owner.execute("INSERT INTO jobkeeper.job_types (name, queue) VALUES ('acme-payroll', 'background')")
    typo = {"type": "acme-payrol", "data": {}}
    body = assert_problem(await http.post(JOBS, json=typo, headers=tokens.user_a), 422, "body.type")
    assert "acme-payroll" not in body["detail"]
    body = assert_problem(await http.post(JOBS, json=typo, headers=tokens.admin), 422, "body.type")
    assert "did you mean 'acme-payroll'" in body["detail"]
