"""Every verb answers --help and is documented in docs/cli.md; an unreachable database exits 3."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from jobkeeper.cli import main
from tests.cli.conftest import cli_env

ROOT = Path(__file__).resolve().parents[2]
JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/jobkeeper"


def _verbs(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from _verbs(command, path)


def test_every_verb_has_help_and_a_reference_entry() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    verbs = list(_verbs(main))
    assert len(verbs) > 30
    undocumented = [
        " ".join(v) for v in verbs if not re.search(rf"`jobkeeper {re.escape(' '.join(v))}[` ]", reference)
    ]
    assert undocumented == []
    runner = CliRunner()
    for verb in verbs:
        result = runner.invoke(main, [*verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Usage: " in result.output


def test_an_unreachable_database_exits_3_in_one_line() -> None:
    runner = CliRunner()
    for verb in (
        ["jobs", "list"],
        ["jobs", "show", "5a1d0c1e-0000-4000-8000-000000000000"],
        ["queues", "list"],
        ["dead-letters", "list"],
        ["alerts", "list"],
        ["workers", "list"],
        ["enqueue", "send-email"],
        ["schedules", "list"],
        ["limits", "list"],
        ["db", "current"],
    ):
        result = runner.invoke(main, verb, env=cli_env(UNREACHABLE))
        assert result.exit_code == 3, (verb, result.output)
        assert result.stderr.startswith("Error: database unreachable:"), (verb, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_")} | {
        "DATABASE_URL": UNREACHABLE
    }
    process = subprocess.run([JOBKEEPER, "jobs", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert process.returncode == 3
    assert "Traceback" not in process.stderr


def test_every_verb_is_run_by_some_test() -> None:
    """Each verb appears as an invocation (its words quoted in sequence, as a runner or subprocess
    takes them) in a test module."""
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    untested = []
    for verb in _verbs(main):
        words = r",\s*".join(rf"[\"']{re.escape(word)}[\"']" for word in verb)
        if not re.search(words, sources):
            untested.append(" ".join(verb))
    assert untested == []


def test_db_sql_prints_the_migrations_for_review() -> None:
    from jobkeeper.store import migrate

    result = CliRunner().invoke(main, ["db", "sql"])
    assert result.exit_code == 0
    assert result.stdout.strip() == migrate.upgrade_sql().strip()
    assert "CREATE TABLE" in result.stdout
