"""The edges build on the core, never the reverse: nothing imports the CLI, the server or the process
plumbing but those three (and `python -m jobkeeper`), and the API does not import the dashboard that
builds on it; jobkeeper.server puts the two together (docs/decisions.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "jobkeeper"

TOP = ("jobkeeper.cli", "jobkeeper.server", "jobkeeper.process")
MAY_IMPORT_TOP = ("cli/", "server.py", "process/", "__main__.py")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def _offenders(under: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((PACKAGE / under).rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith(allowed):
            continue
        upward = sorted(module for module in _imports(path) if _within(module, forbidden))
        if upward:
            found[name] = upward
    return found


def test_only_the_top_imports_the_cli_the_server_and_the_process_plumbing() -> None:
    assert _offenders(".", TOP, MAY_IMPORT_TOP) == {}


def test_the_api_does_not_import_the_dashboard() -> None:
    assert _offenders("api", ("jobkeeper.dashboard",)) == {}


def test_the_scan_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f() -> None:\n    from jobkeeper.dashboard import install\n", encoding="utf-8")
    assert _within("jobkeeper.dashboard.install", ("jobkeeper.dashboard",))
    assert "jobkeeper.dashboard" in _imports(sample)
