"""Property-based run over the app's own OpenAPI schema (schemathesis): whatever the input, never a 5xx.

Every operation is exercised with generated valid and invalid requests, as a platform admin and as a
tenant's venue_admin (tenant-scoped, under row-level security), against a real migrated database.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any, cast

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.python import asgi

from jobkeeper.api.auth import Role, mint_token
from jobkeeper.server import create_app
from jobkeeper.types import DEV_TENANT_ID
from tests.api.support import api_settings
from tests.support import create_database, drop_database

# psycopg_pool's background tasks (new connections, reconnect delays) draw from the global `random` for
# their jitter; when one runs while hypothesis generates an example, hypothesis reports "random used inside
# a strategy" (a deprecation, an error here). The draws do not touch hypothesis's own choices.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
# Examples per operation and role: bounded so that the whole run stays well under a minute.
MAX_EXAMPLES = {Role.ADMIN: 15, Role.VENUE_ADMIN: 8}
_databases = itertools.count()
COUNTED: dict[str, int] = {}
"""Requests made per role (printed at the end of the module with -s)."""


@pytest.fixture(scope="module")
def fuzzed_app(admin_url: str, template_db: str) -> Iterator[FastAPI]:
    name = f"{template_db.removesuffix('template')}schemathesis_{next(_databases)}"
    url = create_database(admin_url, name, template=template_db)
    with psycopg.connect(url, autocommit=True) as conn:  # a live worker: readiness answers 200
        conn.execute("INSERT INTO jobkeeper.workers (hostname, pid, concurrency) VALUES ('fuzz', 4242, 1)")
    # Generous limits: a 429 is a correct answer, but it would hide the code behind it.
    # A slow shared machine must not turn into 503s here: the assertion is about input, not load.
    fuzz = api_settings(
        api_rate_burst=100_000,
        api_rate_per_second=100_000.0,
        ready_worker_max_age=86_400.0,
        api_acquire_timeout=30.0,
    )
    app = create_app(fuzz, url)
    try:
        yield app
    finally:
        print(f"\nschemathesis requests: {COUNTED}")
        asgi.shutdown_lifespans()  # schemathesis started the app's lifespan: close its pools first
        drop_database(admin_url, name)


def _openapi() -> dict[str, Any]:
    # The schema is the app's own; the app that serves it is built per module (it needs the database).
    # No connection is made: pools open only when an app starts.
    document: dict[str, Any] = create_app(api_settings(), "postgresql://unused@127.0.0.1/unused").openapi()
    return document


# Under pytest-xdist a schema's generated cases are not scheduled: the tests would pass having run no case.
# `make test` runs this module in a pass of its own, without xdist (Makefile).
if os.environ.get("PYTEST_XDIST_WORKER"):
    pytest.skip("schemathesis runs without xdist: `make test` gives it its own pass", allow_module_level=True)

schema = schemathesis.openapi.from_dict(_openapi())
Test = Callable[[Any, FastAPI], None]


def _each_operation() -> Callable[[Test], Test]:
    """`schema.parametrize()`, typed: one test per operation of the schema."""
    return cast(Callable[[Test], Test], schema.parametrize())


def _headers(role: Role) -> dict[str, str]:
    token = mint_token(
        api_settings(), role=role, tenant_id=DEV_TENANT_ID, subject=f"fuzz-{role}", ttl_seconds=3600
    )
    return {"Authorization": f"Bearer {token}"}


def _bounded(role: Role) -> Callable[[Test], Test]:
    return settings(
        max_examples=MAX_EXAMPLES[role],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _check(case: Any, app: FastAPI, role: Role) -> None:
    response = case.call(app=app, headers=_headers(role))
    COUNTED[role.value] = COUNTED.get(role.value, 0) + 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text)


@_each_operation()
@_bounded(Role.ADMIN)
def test_no_input_makes_the_api_fail_for_a_platform_admin(case: Any, fuzzed_app: FastAPI) -> None:
    _check(case, fuzzed_app, Role.ADMIN)


@_each_operation()
@_bounded(Role.VENUE_ADMIN)
def test_no_input_makes_the_api_fail_for_a_venue_admin(case: Any, fuzzed_app: FastAPI) -> None:
    _check(case, fuzzed_app, Role.VENUE_ADMIN)
