"""Fixtures of the processor tests that need the database: a connection and workers stopped at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from jobkeeper import Settings, Worker
from jobkeeper.worker import Registry


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection to the test's database."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        yield conn


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def make_worker(db_url: str, settings: Settings) -> AsyncIterator[WorkerFactory]:
    """Build workers on the test's database (fast polling); all are stopped at teardown."""
    workers: list[Worker] = []

    def make(registry: Registry, **options: Any) -> Worker:
        options.setdefault("poll_interval", 0.05)
        options.setdefault("concurrency", 10)
        options.setdefault("shutdown_timeout", 0.0)
        worker = Worker(db_url, settings=settings, registry=registry, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop(timeout=0)
