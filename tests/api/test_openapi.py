"""The OpenAPI document is valid, self-contained, and describes what the server accepts and refuses.

Clients nobody here wrote are generated from `/openapi.json`: every `$ref` must resolve, and the spec must
pass `openapi-spec-validator`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from jobkeeper.api.auth import Role, mint_token
from jobkeeper.server import create_app
from jobkeeper.types import DEV_TENANT_ID
from tests.api.support import api_settings, assert_problem


@pytest.fixture(scope="module")
def spec_app() -> FastAPI:
    # The spec and routing need no database: no lifespan runs, so no pool opens.
    return create_app(api_settings(), "postgresql://unused@127.0.0.1/unused")


@pytest.fixture(scope="module")
def spec(spec_app: FastAPI) -> dict[str, Any]:
    return spec_app.openapi()


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, str, Any]]:
    """(location, key, value) of every key of every object in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key, value
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{where}/{index}")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only local references are expected"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} does not resolve"
        assert part in node, f"{ref} does not resolve (no {part!r})"
        node = node[part]
    return node


def test_the_spec_validates(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_ref_resolves_and_no_defs_are_left_inside_components(spec: dict[str, Any]) -> None:
    refs = 0
    for where, key, value in _walk(spec):
        assert key != "$defs", f"{where} holds $defs: its $refs point at #/components/schemas instead"
        if key == "$ref":
            _resolve(spec, value)
            refs += 1
    assert refs > 50


def test_nested_payload_models_are_components(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    push = schemas["Payload_SendPush"]["properties"]["subscription"]
    assert {"$ref": "#/components/schemas/PushSubscription"} in push["anyOf"]
    assert schemas["PushSubscription"]["required"] == ["endpoint", "keys"]


def _parameter(spec: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    (parameter,) = [p for p in spec["paths"][path][method]["parameters"] if p["name"] == name]
    assert isinstance(parameter, dict)
    return parameter


def _nullable(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf", [schema])
    return any(branch.get("type") == "null" for branch in branches)


def test_schedule_update_declares_null_only_where_the_server_takes_it(spec: dict[str, Any]) -> None:
    properties = spec["components"]["schemas"]["ScheduleUpdate"]["properties"]
    assert {name for name, schema in properties.items() if _nullable(schema)} == {"priority"}
    assert all("default" not in schema for schema in properties.values())  # left out: left unchanged


async def test_schedule_update_refuses_null_with_a_reason(spec_app: FastAPI) -> None:
    token = mint_token(api_settings(), role=Role.ADMIN, tenant_id=DEV_TENANT_ID, subject="t", ttl_seconds=60)
    transport = httpx.ASGITransport(app=spec_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobkeeper.test") as http:
        response = await http.patch(
            f"/api/v1/queue/schedules/{uuid.UUID(int=1)}",
            json={"cron": None, "active": None},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = assert_problem(response, 422)
    reasons = {error["field"]: error["reason"] for error in body["errors"]}
    assert set(reasons) == {"body.cron", "body.active"}
    assert all("may not be null" in reason for reason in reasons.values())


def test_clean_lists_only_the_finished_statuses(spec: dict[str, Any]) -> None:
    status = _parameter(spec, "/api/v1/queue/queues/{queue}/clean", "delete", "status")
    (array,) = [branch for branch in status["schema"]["anyOf"] if branch.get("type") == "array"]
    assert sorted(array["items"]["enum"]) == ["cancelled", "completed", "failed"]


def test_the_payload_filters_of_job_lists_are_described(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/v1/queue/jobs"]["get"]
    assert "`payload.<field>`" in operation["description"]
    payload = _parameter(spec, "/api/v1/queue/jobs", "get", "payload")
    assert payload["schema"]["contentMediaType"] == "application/json"
    assert payload["schema"]["contentSchema"] == {"type": "object"}
