"""Test harness: a real PostgreSQL only.

- `JOBKEEPER_TEST_DATABASE_URL` names a server (its user must create databases and roles); without it an
  embedded PostgreSQL is started in `.jobkeeper/test-pg` for the run, by the controlling process, so that
  the parallel workers of `make test` (pytest-xdist) share it and it stops after the last of them.
- `make test` runs two workers; the fault suite, the browser tests and the tests that time or signal real
  processes run in one group (`SERIAL`), one after another on one worker.
- A template database is migrated once per session. `db_url` clones it for a test that needs commits,
  LISTEN/NOTIFY or several connections; `conn`/`aconn` give a transaction that is rolled back.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from jobkeeper import Client, Settings, SyncClient
from jobkeeper.process.embedded import EmbeddedPostgres
from jobkeeper.store import migrate
from tests.support import client_settings, create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
PREFIX = f"jk_test_{os.getpid()}_"
_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here rather than in tests/fault/conftest.py alone, so that `pytest --run-slow` works from the root.
    parser.addoption("--run-slow", action="store_true", default=False, help="run the long variants")


# Tests that kill, stop or time real processes, or drive a browser: one worker runs them in turn, so that
# two of them never compete for the two cores (pytest-xdist's loadgroup).
SERIAL = (
    "tests/fault/",
    "tests/e2e/",
    "tests/embedded/",
    "tests/schedules/test_maintenance.py",
    "tests/docs/test_shown_output.py",
    "tests/docs/test_examples.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Start the embedded server once, in the controlling process (the only one without xdist)."""
    if hasattr(config, "workerinput") or os.environ.get("JOBKEEPER_TEST_DATABASE_URL"):
        return
    server = EmbeddedPostgres(ROOT / ".jobkeeper" / "test-pg", database="postgres")
    already_running = (server.pgdata / "postmaster.pid").exists()
    os.environ["JOBKEEPER_TEST_DATABASE_URL"] = server.start()
    if not already_running:  # else another test run started it and is still using it
        config.stash[_SERVER] = server


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_SERVER, None)
    if server is not None:
        server.stop()


_SERVER = pytest.StashKey[EmbeddedPostgres]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    serial = pytest.mark.xdist_group("serial")
    for item in items:
        path = item.path.relative_to(ROOT).as_posix()
        if path.startswith(SERIAL):
            item.add_marker(serial)


_FAULT_SUMMARIES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _FAULT_SUMMARIES.extend(str(v) for name, v in report.user_properties if name == "fault_summary")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The fault scenarios' summary lines (tests/fault/conftest.py `summary`), again at the end."""
    if _FAULT_SUMMARIES:
        terminalreporter.section("fault scenarios")
        for line in _FAULT_SUMMARIES:
            terminalreporter.write_line(line)


def _drop_stale_databases(admin_url: str) -> None:
    """Drop databases left by earlier test runs whose process is gone."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        names = [
            row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'jk_test_%'")
        ]
        for name in names:
            match = re.match(r"jk_test_(\d+)_", name)
            if match and _alive(int(match.group(1))):
                continue
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def admin_url() -> str:
    """URL of a maintenance database on the server under test."""
    url = os.environ["JOBKEEPER_TEST_DATABASE_URL"]  # set by pytest_configure when it was not
    _drop_stale_databases(url)
    return url


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """Name of a database migrated to head, cloned by `db_url`. Never connect to it directly."""
    name = PREFIX + "template"
    url = create_database(admin_url, name)
    migrate.upgrade(url)
    yield name
    drop_database(admin_url, name)


@pytest.fixture
def empty_db_url(admin_url: str) -> Iterator[str]:
    """A fresh database with no jobkeeper schema, for migration tests."""
    name = f"{PREFIX}{next(_counter)}"
    yield create_database(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database of its own for this test: commit freely."""
    name = f"{PREFIX}{next(_counter)}"
    yield create_database(admin_url, name, template=template_db)
    drop_database(admin_url, name)


@pytest.fixture(scope="session")
def shared_db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """One migrated database shared by tests that roll back everything they do."""
    name = PREFIX + "shared"
    yield create_database(admin_url, name, template=template_db)
    drop_database(admin_url, name)


@pytest.fixture
def conn(shared_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction that is rolled back after the test."""
    with psycopg.connect(shared_db_url) as connection:
        yield connection
        connection.rollback()


@pytest.fixture
async def aconn(shared_db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An async connection inside a transaction that is rolled back after the test."""
    connection = await psycopg.AsyncConnection.connect(shared_db_url)
    try:
        yield connection
        await connection.rollback()
    finally:
        await connection.close()


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A directory for an embedded server of the test's own. Not under pytest's tmp root: a second pytest
    session resets that root to mode 0700, locking out the server's `pgserver` user mid-run."""
    path = ROOT / ".jobkeeper" / "tmp" / uuid.uuid4().hex
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings() -> Settings:
    return client_settings()


@pytest.fixture
async def client(db_url: str, settings: Settings) -> AsyncIterator[Client]:
    async with Client(db_url, settings=settings) as c:
        yield c


@pytest.fixture
def sync_client(db_url: str, settings: Settings) -> Iterator[SyncClient]:
    with SyncClient(db_url, settings=settings) as c:
        yield c
