"""The runnable examples of the README and docs/ run as tests, against a real database.

A block runs when its fence is ```` ```python run ````; other Python blocks are fragments. Each runs as a
script of its own (`__name__ == "__main__"`), with `DATABASE_URL` naming a fresh migrated database and a
clean handler registry, from the repository root, in its own temporary working directory.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

from jobkeeper.worker import registry as registry_module

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python run[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
TIMEOUT = 60


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples() -> list[Example]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            found.append(Example(path, text.count("\n", 0, match.start()) + 1, match.group(1)))
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
