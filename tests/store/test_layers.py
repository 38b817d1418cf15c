"""The layers (STYLE, "No SQL outside store/"): outside jobkeeper/store, no module names a query nor
imports psycopg; they call the store's operations, which translate the database's errors once. Only the
few modules whose job is a connection itself (PLUMBING) may import the driver.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "jobkeeper"

PSYCOPG = "imports psycopg"
BY_NAME = "names a query"  # query(), the queries module, or the by-name wrappers rows/row/batch

# Modules whose job is the connection itself: they may import psycopg (never name a query), for good.
PLUMBING = {
    "process/embedded.py",  # the embedded server's readiness check connects before there is a schema
    "worker/connection.py",  # the worker's dedicated connections: connect, reconnect, session settings
    "worker/notifier.py",  # LISTEN's notifies() generator, whose errors are psycopg's
    "cli/doctor.py",  # connecting (and reporting libpq's own failure) is what the doctor checks
}

_DRIVER_MODULES = {"psycopg", "psycopg_pool"}
_BY_NAME_FUNCTIONS = {"query", "first_row", "named"}
_BY_NAME_METHODS = {"rows", "row", "batch"}


def _offences(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name) and function.id in _BY_NAME_FUNCTIONS:
                found.add(BY_NAME)
            if isinstance(function, ast.Attribute) and function.attr in _BY_NAME_METHODS:
                found.add(BY_NAME)
            continue
        else:
            continue
        if any(module.split(".")[0] in _DRIVER_MODULES for module in modules):
            found.add(PSYCOPG)
        if "jobkeeper.store.queries" in modules:
            found.add(BY_NAME)
    return found


def _scan() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module.startswith("store/"):
            continue
        offences = _offences(ast.parse(path.read_text(encoding="utf-8"), module))
        if module in PLUMBING:
            offences.discard(PSYCOPG)
        if offences:
            found[module] = offences
    return found


def test_no_module_reaches_past_the_store() -> None:
    assert _scan() == {}, "call the store's operations (jobkeeper/store) instead"


def test_each_plumbing_module_still_needs_the_driver() -> None:
    # Keeps PLUMBING short: an entry whose module moved or no longer imports psycopg must go.
    needless = [
        module
        for module in sorted(PLUMBING)
        if not (PACKAGE / module).exists()
        or PSYCOPG not in _offences(ast.parse((PACKAGE / module).read_text(encoding="utf-8")))
    ]
    assert needless == []


def test_the_scan_finds_what_it_looks_for() -> None:
    sample = ast.parse(
        "import psycopg\nfrom jobkeeper.store.queries import query\ntx.rows('get_jobs')\nfirst_row('x')\n"
    )
    assert _offences(sample) == {PSYCOPG, BY_NAME}
    assert _offences(ast.parse("from jobkeeper.store import jobs\nawait tx.run(jobs.get(1))\n")) == set()
