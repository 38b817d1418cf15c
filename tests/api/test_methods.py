"""A method a path does not have answers 405 naming every method the path has (`Allow`), and a literal
path (`/jobs/batch`) is never taken for a parameter (`/jobs/{job_id}`)."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from jobkeeper.server import create_app
from tests.api.support import api_settings, assert_problem

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
P = "/api/v1/queue"


@pytest.fixture(scope="module")
def no_db_app() -> FastAPI:
    # A 405 is decided before any handler runs: no database is needed (no lifespan, no pool).
    return create_app(api_settings(), "postgresql://unused@127.0.0.1/unused")


@pytest.fixture
async def client(no_db_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=no_db_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobkeeper.test") as http:
        yield http


def _registered(app: FastAPI) -> dict[str, set[str]]:
    """Path template → the methods its routes declare."""
    paths: dict[str, set[str]] = defaultdict(set)
    for context in iter_route_contexts(app.routes):
        if context.methods and context.path_format:
            paths[context.path_format] |= context.methods
    return paths


def _concrete(template: str) -> str:
    # A UUID fits every id parameter and is no literal path segment.
    return re.sub(r"\{[^}]+\}", str(uuid.UUID(int=7)), template)


async def test_every_path_names_exactly_its_methods_in_allow(
    no_db_app: FastAPI, client: httpx.AsyncClient
) -> None:
    paths = _registered(no_db_app)
    assert len(paths) > 40
    for template, methods in paths.items():
        refused = next(method for method in METHODS if method not in methods)
        response = await client.request(refused, _concrete(template))
        assert_problem(response, 405)
        allow = {method.strip() for method in response.headers["allow"].split(",")}
        assert allow == methods, (refused, template)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", P + "/jobs", "GET, POST"),
        ("PUT", P + "/dead-letters/purge", "POST"),
        ("GET", P + "/jobs/batch", "POST"),
        ("DELETE", P + "/jobs/batch", "POST"),
        ("GET", P + "/dead-letters/replay", "POST"),
        ("DELETE", P + "/dead-letters/purge", "POST"),
        ("PUT", P + f"/schedules/{uuid.UUID(int=1)}", "DELETE, GET, PATCH"),
    ],
)
async def test_literal_paths_answer_405_with_their_own_methods(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    body = assert_problem(response, 405)
    assert response.headers["allow"] == allow
    assert method in body["detail"]


async def test_a_parameter_still_answers_422_for_an_ill_formed_id(client: httpx.AsyncClient) -> None:
    # No token: the 401 comes first, but only because the route (GET /jobs/{job_id}) was reached.
    assert_problem(await client.get(P + "/jobs/not-a-uuid"), 401)
