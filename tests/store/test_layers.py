"""The layers (STYLE, "No SQL outside store/"): outside jobkeeper/store, no module names a query nor
imports psycopg; they call the store's operations.

Issue 16 moves the callers over work package by work package. Until it is done, `TODAY` lists the modules
that still offend, and what they do: a new offence fails, and so does an entry that no longer offends, so
that each work package shrinks the list as it switches its callers (WP5 empties it).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "jobkeeper"

PSYCOPG = "imports psycopg"
BY_NAME = "names a query"  # query(), the queries module, or the by-name wrappers rows/row/batch

# Modules whose job is the connection itself: they may import psycopg for good.
PLUMBING = {
    "embedded.py",  # the embedded server's readiness check
    "worker/connection.py",  # the worker connections' session settings
    "worker/notifier.py",  # LISTEN's notifies() generator
    "cli_doctor.py",  # connecting is what the doctor checks
}

TODAY: dict[str, set[str]] = {
    "api/health.py": {BY_NAME},
    "api/problems.py": {PSYCOPG},
    "api/routes_limits.py": {BY_NAME},
    "api/state.py": {PSYCOPG},
    "api/tenancy.py": {BY_NAME, PSYCOPG},
    "cli_admin.py": {BY_NAME, PSYCOPG},
    "cli_common.py": {BY_NAME, PSYCOPG},
    "cli_doctor.py": {BY_NAME},
    "cli_enqueue.py": {PSYCOPG},
    "client.py": {BY_NAME, PSYCOPG},
    "dashboard/pages_jobs.py": {BY_NAME},
    "dashboard/pages_overview.py": {BY_NAME},
    "limits/outbound.py": {PSYCOPG},
    "maintenance/alerts.py": {BY_NAME, PSYCOPG},
    "maintenance/retention.py": {BY_NAME, PSYCOPG},
    "maintenance/scheduler.py": {BY_NAME, PSYCOPG},
    "maintenance/service.py": {PSYCOPG},
    "worker/claimer.py": {PSYCOPG},
    "worker/operations.py": {BY_NAME, PSYCOPG},
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


def test_no_new_module_reaches_past_the_store() -> None:
    new = {
        module: sorted(offences - TODAY.get(module, set()))
        for module, offences in _scan().items()
        if offences - TODAY.get(module, set())
    }
    assert new == {}, "call the store's operations (jobkeeper/store) instead"


def test_the_list_of_todays_offenders_only_shrinks() -> None:
    found = _scan()
    fixed = {
        module: sorted(offences - found.get(module, set()))
        for module, offences in TODAY.items()
        if offences - found.get(module, set())
    }
    assert fixed == {}, "these no longer offend: take them out of TODAY"


def test_the_scan_finds_what_it_looks_for() -> None:
    sample = ast.parse(
        "import psycopg\nfrom jobkeeper.store.queries import query\ntx.rows('get_jobs')\nfirst_row('x')\n"
    )
    assert _offences(sample) == {PSYCOPG, BY_NAME}
    assert _offences(ast.parse("from jobkeeper.store import jobs\nawait tx.run(jobs.get(1))\n")) == set()
