"""Security tests reuse the API's fixtures (the app, an HTTP client, tokens of every role for two tenants),
on one migrated database per module instead of one per test: each test makes tenants of its own, so tests
never see each other's rows, and a database clone (seconds on a busy machine) is paid once per module."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.api.support import create_tenant
from tests.fixtures import Tenants
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import make_app as make_app
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tokens as tokens
from tests.support import create_database, drop_database

_modules = itertools.count()


@pytest.fixture(scope="module")
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database shared by the tests of one module."""
    name = f"{template_db.removesuffix('template')}security_{next(_modules)}"
    yield create_database(admin_url, name, template=template_db)
    drop_database(admin_url, name)


@pytest.fixture
async def tenants(db_url: str) -> Tenants:
    """Two tenants of this test's own."""
    suffix = uuid.uuid4().hex[:12]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        a = await create_tenant(conn, f"a-{suffix}")
        b = await create_tenant(conn, f"b-{suffix}")
    return Tenants(a=a, b=b)
