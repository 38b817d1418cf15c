"""docs/seed-findings.md covers every check of the numbered seed audits, and every module and test it
names exists (so a renamed test or file cannot leave the page pointing at nothing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "seed-findings.md"
SEEDS = [ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")]


def _rows() -> list[str]:
    return [line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]


def test_every_numbered_check_has_a_row() -> None:
    ids = {row.split("|")[1].strip() for row in _rows()}
    expected = {f"DB{n}" for n in range(1, 21)} | {f"MIG{n}" for n in range(1, 21)}
    assert expected <= ids
    seeds = next((path for path in SEEDS if path.is_dir()), None)
    if seeds is None:
        pytest.skip("the seed audits are not beside this checkout")
    in_seeds = set()
    for audit in seeds.glob("*.txt"):
        in_seeds |= set(re.findall(r"^### ((?:DB|MIG)\d+):", audit.read_text(encoding="utf-8"), re.M))
    assert in_seeds == expected


def test_every_named_file_and_test_exists() -> None:
    missing = []
    for row in _rows():
        for cell in row.split("|"):
            current: Path | None = None
            for ref in re.findall(r"`([^`]+)`", cell):
                path, _, test = ref.partition("::")
                if path.startswith(("jobkeeper/", "tests/", "deploy/")) or path in (
                    "pyproject.toml",
                    "Makefile",
                ):
                    target = ROOT / path.split(" ")[0]
                    if not target.exists():
                        missing.append(ref)
                        continue
                    current = target
                elif path:
                    continue  # a setting, an SQL fragment, a value
                defined = rf"^(async )?def {re.escape(test)}\("
                if (
                    test
                    and current is not None
                    and current.is_file()
                    and not re.search(defined, current.read_text(encoding="utf-8"), re.M)
                ):
                    missing.append(f"{current.relative_to(ROOT)}::{test}")
    assert missing == []
