"""Fixtures shared by the folders that test the HTTP app (api, dashboard, e2e, security): the API's
settings, two tenants, a schema-owner connection, tokens of every role, the app and an HTTP client on it.

A folder's conftest imports the ones it uses (`from tests.fixtures import app as app, ...`). They are not
registered for the whole suite through `pytest_plugins`: `settings` here overrides the root conftest's (it
adds the JWT settings the app needs) and must do so only in these folders.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from jobkeeper import Settings
from jobkeeper.api.auth import Role, mint_token
from jobkeeper.server import create_app
from tests.api.support import Conn, api_settings, create_tenant


@dataclass(frozen=True)
class Tenants:
    a: uuid.UUID
    b: uuid.UUID


@dataclass(frozen=True)
class Tokens:
    """Headers of a plain user, a venue_admin and a platform admin, each of tenant A and of tenant B."""

    settings: Settings
    tenants: Tenants

    def headers(
        self, role: Role = Role.USER, tenant: uuid.UUID | None = None, subject: str = ""
    ) -> dict[str, str]:
        tenant_id = tenant or self.tenants.a
        token = mint_token(
            self.settings,
            role=role,
            tenant_id=tenant_id,
            subject=subject or f"{role.value}-{tenant_id}",
            ttl_seconds=600,
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def user_a(self) -> dict[str, str]:
        return self.headers(Role.USER, self.tenants.a)

    @property
    def venue_a(self) -> dict[str, str]:
        return self.headers(Role.VENUE_ADMIN, self.tenants.a)

    @property
    def user_b(self) -> dict[str, str]:
        return self.headers(Role.USER, self.tenants.b)

    @property
    def venue_b(self) -> dict[str, str]:
        return self.headers(Role.VENUE_ADMIN, self.tenants.b)

    @property
    def admin(self) -> dict[str, str]:
        return self.headers(Role.ADMIN, self.tenants.a)


@pytest.fixture
def settings() -> Settings:
    return api_settings()


@pytest.fixture
async def tenants(db_url: str) -> Tenants:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        a = await create_tenant(conn, "tenant-a")
        b = await create_tenant(conn, "tenant-b")
    return Tenants(a=a, b=b)


@pytest.fixture
def tokens(settings: Settings, tenants: Tenants) -> Tokens:
    return Tokens(settings=settings, tenants=tenants)


@pytest.fixture
async def owner(db_url: str) -> AsyncIterator[Conn]:
    """A connection as the schema owner (every tenant), autocommit, for arranging and checking rows."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def app(db_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def make_app(db_url: str, settings: Settings) -> Callable[..., FastAPI]:
    """Another app on the same database, with some settings changed (start it with `running`)."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(dataclasses.replace(settings, **overrides), db_url)

    return make


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobkeeper.test") as client:
        yield client
