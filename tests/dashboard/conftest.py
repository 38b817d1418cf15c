"""Dashboard fixtures: the API app (which serves the dashboard) on a fresh database, two tenants, and an
HTTP client signed in as whoever a test asks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from jobkeeper import Settings, Worker
from jobkeeper.api.auth import Role
from jobkeeper.server import create_app
from jobkeeper.worker import Registry
from tests.api.support import Conn, api_settings, create_tenant
from tests.dashboard.support import COOKIE, csrf, token


@dataclass(frozen=True)
class Tenants:
    a: uuid.UUID
    b: uuid.UUID


@pytest.fixture
def settings() -> Settings:
    return api_settings()


@pytest.fixture
async def tenants(db_url: str) -> Tenants:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        return Tenants(a=await create_tenant(conn, "tenant-a"), b=await create_tenant(conn, "tenant-b"))


@pytest.fixture
async def owner(db_url: str) -> AsyncIterator[Conn]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def app(db_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db_url)
    async with application.router.lifespan_context(application):
        yield application


class Browser(httpx.AsyncClient):
    """An HTTP client with a dashboard session; `csrf` is the token its forms carry."""

    csrf: str = ""


SignIn = Callable[..., Browser]


@pytest.fixture
async def sign_in(app: FastAPI, settings: Settings, tenants: Tenants) -> AsyncIterator[SignIn]:
    clients: list[Browser] = []

    def make(role: Role = Role.ADMIN, tenant: uuid.UUID | None = None) -> Browser:
        session_token = token(settings, role, tenant or tenants.a)
        client = Browser(transport=httpx.ASGITransport(app=app), base_url="http://jobkeeper.test")
        client.cookies.set(COOKIE, session_token)
        client.csrf = csrf(session_token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobkeeper.test"
    ) as c:
        yield c


WorkerFactory = Callable[[Registry], Worker]


@pytest.fixture
async def make_worker(db_url: str, settings: Settings) -> AsyncIterator[WorkerFactory]:
    """Real workers on the test's database (fast polling); all are stopped at teardown."""
    workers: list[Worker] = []

    def make(registry: Registry) -> Worker:
        worker = Worker(
            db_url, settings=settings, registry=registry, poll_interval=0.05, shutdown_timeout=0.0
        )
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop(timeout=0)
