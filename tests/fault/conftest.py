"""Fixtures of the fault suite: a test database with the effect ledger, real worker processes, and the
summary lines printed at the end of the run.

Long variants are marked `slow` and skipped unless pytest runs with `--run-slow` or PYTEST_RUN_SLOW=1
(the option is registered by tests/conftest.py too, so that it works from the root: `make test
PYTEST_ARGS=--run-slow`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobkeeper import Client
from tests.fault.harness import Fleet, producer_settings
from tests.fault.ledger import SCHEMA

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # another conftest added it already
        parser.addoption("--run-slow", action="store_true", default=False, help="run the long variants")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _run_slow(config):
        return
    skip = pytest.mark.skip(reason="long variant: run with --run-slow")
    for item in items:
        if "slow" in item.keywords and HERE in item.path.parents:
            item.add_marker(skip)


def _run_slow(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-slow", default=False)) or os.environ.get("PYTEST_RUN_SLOW") == "1"


@pytest.fixture
def summary(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a scenario's summary line and repeat it at the end of the run (tests/conftest.py prints
    them: the line travels in the test's report, so it reaches the controlling process under xdist)."""

    def record(line: str) -> None:
        print(line)
        request.node.user_properties.append(("fault_summary", line))

    return record


@pytest.fixture
def fault_db(db_url: str) -> str:
    """The test's database with the tables where handlers record executions and effects."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return db_url


@pytest.fixture
async def db(fault_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(fault_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def fleet(fault_db: str, tmp_path: Path) -> Iterator[Fleet]:
    """Worker processes on the test's database (logs in tmp_path); killed at the end if still alive."""
    workers = Fleet(fault_db, tmp_path)
    yield workers
    workers.kill_all()


@pytest.fixture
async def producer_client(fault_db: str) -> AsyncIterator[Client]:
    async with Client(fault_db, settings=producer_settings()) as client:
        yield client
