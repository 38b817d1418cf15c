"""The OpenAPI document is valid, self-contained, and describes what the server accepts and refuses.

Clients nobody here wrote are generated from `/openapi.json`: every `$ref` must resolve, and the spec must
pass `openapi-spec-validator`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from jobkeeper.api import create_app
from tests.api.support import api_settings


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
