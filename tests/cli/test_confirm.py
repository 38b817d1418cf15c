"""A refused confirmation (an answer of no, or no answer at all) exits 2 and changes nothing, as
docs/cli.md says; yes goes ahead."""

from __future__ import annotations

import pytest

from jobkeeper import cli_dead_letters
from jobkeeper.store import migrate
from tests.cli.conftest import History, Run, output_json, query


def _refused(result_exit_code: int, stderr: str, what: str) -> None:
    assert result_exit_code == 2, stderr
    assert stderr.strip().splitlines()[-1] == f"Error: not confirmed: {what}"


def test_db_downgrade_refused_or_unanswered_changes_nothing(run: Run) -> None:
    head = migrate.head()
    for answer in ("n\n", "", "\n"):
        refused = run("db", "downgrade", input=answer)
        _refused(refused.exit_code, refused.stderr, "the schema is unchanged")
        assert run("db", "current").stdout.strip() == f"{head} (head)"
    done = run("db", "downgrade", input="y\n")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().endswith(f"{head} -> {int(head) - 1:04d}")


def test_dead_letters_purge_refused_on_a_terminal_keeps_the_dead_letters(
    run: Run, db_url: str, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_dead_letters, "_on_terminal", lambda: True)
    for answer in ("n\n", ""):
        refused = run("dead-letters", "purge", "--all", input=answer)
        _refused(refused.exit_code, refused.stderr, "nothing was purged")
        assert "Delete 1 dead letters for good?" in refused.stderr
        assert query(db_url, "SELECT count(*) FROM jobkeeper.dead_letter_jobs") == [(1,)]
    purged = output_json(run("dead-letters", "purge", "--all", "--json", input="y\n"))
    assert purged[0]["ids"] == [str(history.dead_letter)]
