"""Dashboard fixtures: the API app (which serves the dashboard) on a fresh database, two tenants (shared
with the API tests, in tests/fixtures.py), and an HTTP client signed in as whoever a test asks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from jobkeeper import Settings, Worker
from jobkeeper.api.auth import Role
from jobkeeper.worker import Registry
from tests.dashboard.support import COOKIE, csrf, token
from tests.fixtures import Tenants
from tests.fixtures import app as app
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants


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
