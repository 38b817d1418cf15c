"""Request bodies are strict (docs/api.md, Validation): a number is never a string or a boolean, a boolean
never a string or a number, on every endpoint that takes a body; limiter rates have a floor."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from jobkeeper.api.auth import Role, mint_token
from jobkeeper.server import create_app
from jobkeeper.types import DEV_TENANT_ID
from tests.api.support import api_settings, assert_problem

P = "/api/v1/queue"
# Wrongly typed values a lax model would coerce, by the JSON type the spec declares.
WRONG: dict[str, list[Any]] = {
    "integer": ["5", True, 5.5],
    "number": ["10", True],
    "boolean": ["yes", "no", "true", 1, 0],
}


@pytest.fixture(scope="module")
def no_db_app() -> FastAPI:
    # A body is validated before any handler runs: no database is needed (no lifespan, no pool).
    return create_app(api_settings(), "postgresql://unused@127.0.0.1/unused")


@pytest.fixture
async def client(no_db_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    token = mint_token(
        api_settings(), role=Role.ADMIN, tenant_id=DEV_TENANT_ID, subject="strict", ttl_seconds=600
    )
    transport = httpx.ASGITransport(app=no_db_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://jobkeeper.test", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        yield http


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _scalars(
    spec: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(property path, JSON type) of every integer, number and boolean property, nested objects included."""
    schema = _resolve(spec, schema)
    for name, prop in schema.get("properties", {}).items():
        for branch in prop.get("anyOf", [prop]):
            branch = _resolve(spec, branch)
            if branch.get("type") in WRONG:
                yield (*path, name), branch["type"]
            elif "properties" in branch:
                yield from _scalars(spec, branch, (*path, name))


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body: Any = value
    for name in reversed(path):
        body = {name: body}
    assert isinstance(body, dict)
    return body


async def test_every_body_refuses_numbers_and_booleans_of_the_wrong_type(
    no_db_app: FastAPI, client: httpx.AsyncClient
) -> None:
    spec = no_db_app.openapi()
    checked: set[str] = set()
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            path = re.sub(r"\{(queue|name)\}", "stripe", template)
            path = re.sub(r"\{[^}]+\}", str(uuid.UUID(int=7)), path)
            for field, kind in _scalars(spec, content["schema"], ()):
                where = "body." + ".".join(field)
                for wrong in WRONG[kind]:
                    response = await client.request(method, path, json=_nested(field, wrong))
                    assert_problem(response, 422, where)
                checked.add(f"{method.upper()} {template} {where}")
    assert {
        f"PATCH {P}/limiters/{{name}} body.burst",
        f"PATCH {P}/limiters/{{name}} body.rate_per_second",
        f"PATCH {P}/limiters/{{name}} body.unlimited_concurrency",
        f"POST {P}/dead-letters/purge body.replayed",
        f"POST {P}/schedules body.catch_up_window_seconds",
        f"POST {P}/jobs body.options.priority",
    } <= checked, sorted(checked)


@pytest.mark.parametrize("rate", [5e-324, 0.0009, 0, -1])
async def test_a_limiter_rate_below_the_floor_is_refused(client: httpx.AsyncClient, rate: float) -> None:
    response = await client.patch(P + "/limiters/stripe", json={"rate_per_second": rate})
    body = assert_problem(response, 422, "body.rate_per_second")
    assert "0.001" in body["detail"]


async def test_uuids_and_times_are_still_read_from_json_text(client: httpx.AsyncClient) -> None:
    # Strict models must not refuse what JSON can only send as text: the 422 is about `limit` alone.
    body = {
        "ids": [str(uuid.uuid4())],
        "since": "2026-01-01T00:00:00Z",
        "tenant_id": str(uuid.uuid4()),
        "limit": 0,
    }
    problem = assert_problem(await client.post(P + "/dead-letters/replay", json=body), 422, "body.limit")
    assert [error["field"] for error in problem["errors"]] == ["body.limit"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (P + "/jobs", {"type": "send-sms", "payload": {"to": "+14155552671"}}, "body.payload"),
        (P + "/jobs/batch", {"jobs": [{"type": "x", "payload": {}}]}, "body.jobs[0].payload"),
        (P + "/schedules", {"name": "n", "cron": "* * * * *", "type": "x", "payload": {}}, "body.payload"),
    ],
)
async def test_a_body_that_says_payload_is_told_to_say_data(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    # docs/decisions.md, "One word for a job's data": the API's word is `data`.
    problem = assert_problem(await client.post(path, json=body), 422, field)
    (reason,) = [error["reason"] for error in problem["errors"] if error["field"] == field]
    assert "use `data`, not `payload`" in reason
