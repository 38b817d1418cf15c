"""The runnable examples of the README and docs/ run as tests, against a real database.

A block runs when its fence is ```` ```python run ````; other Python blocks are fragments. Each runs as a
script of its own (`__name__ == "__main__"`), with `DATABASE_URL` naming a fresh migrated database and a
clean handler registry, from the repository root, in its own temporary working directory.

Running is not enough: a reader runs them beside `make up`, whose worker then runs the jobs they leave.
So after each one a worker as `make up` starts it (the built-in processors, no provider configured, the
development outbox on) runs every job that is due, and none may fail. An example that fails a job on
purpose says so in its fence: ```` ```python run expect-failed ````.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
import pytest

from jobkeeper import Settings, Worker
from jobkeeper.processors import register_builtins
from jobkeeper.worker import registry as registry_module
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python run([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
TIMEOUT = 60


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    code: str
    expect_failed: bool = False

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples() -> list[Example]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Example(path, line, match.group(2), "expect-failed" in match.group(1).split()))
    return found


def test_the_docs_have_runnable_examples() -> None:
    where = {str(example).split(":")[0] for example in examples()}
    assert {"README.md", "docs/quickstart.md"} <= where


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(registry_module.default_registry._specs)
    registry_module.default_registry._specs.clear()
    yield
    registry_module.default_registry._specs.clear()
    registry_module.default_registry._specs.update(saved)


def _timeout(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError(f"the example ran longer than {TIMEOUT} s")


@pytest.mark.usefixtures("clean_registry")
@pytest.mark.parametrize("example", examples(), ids=str)
def test_example_runs(example: Example, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("JOBKEEPER_") and n != "JOBKEEPER_TEST_DATABASE_URL"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = compile(example.code, str(example), "exec")
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIMEOUT)
    try:
        exec(code, {"__name__": "__main__", "__file__": str(example.path)})  # noqa: S102 - our own docs
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    failed = asyncio.run(_run_what_is_left(db_url))
    if example.expect_failed:
        assert failed, f"{example} says it fails a job on purpose, and none failed"
    else:
        assert failed == [], f"{example} left {len(failed)} jobs that fail beside `make up`: {failed[:3]}"


# Due, or running: what the worker still has to finish. Waiting jobs settle when their parents do.
UNFINISHED = (
    "SELECT count(*) FROM jobkeeper.jobs"
    " WHERE status IN ('processing', 'waiting') OR (status = 'pending' AND scheduled_at <= now())"
)
FAILED = (
    "SELECT type || ': ' || coalesce(last_error, status) FROM jobkeeper.jobs"
    " WHERE status = 'failed' OR (status = 'pending' AND attempts > 0) ORDER BY created_at"
)


async def _run_what_is_left(db_url: str) -> list[str]:
    """Run every due job as `make up`'s worker would; return those that failed (or wait for a retry)."""
    settings = Settings.from_env({}, dev_outbox=True, pool_min=1, pool_max=4)
    registry = registry_module.default_registry  # the example's own handlers, then the built-ins
    register_builtins(registry, settings)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:

        async def finished() -> bool:
            row = await (await conn.execute(UNFINISHED)).fetchone()
            return row is not None and row[0] == 0

        async with Worker(db_url, settings=settings, registry=registry, poll_interval=0.05):
            await eventually(finished, timeout=30.0, what="the example's jobs to finish")
        return [row[0] for row in await (await conn.execute(FAILED)).fetchall()]
