"""`jobkeeper db current --json`: the revision for scripts, at head and behind it."""

from __future__ import annotations

from jobkeeper.store import migrate
from tests.cli.conftest import Run, output_json


def test_db_current_json_says_the_revision_and_whether_it_is_head(run: Run) -> None:
    head = migrate.head()
    assert output_json(run("db", "current", "--json")) == {"revision": head, "head": head, "at_head": True}
    assert run("db", "downgrade", "--yes").exit_code == 0
    previous = f"{int(head) - 1:04d}"
    assert output_json(run("db", "current", "--json")) == {
        "revision": previous,
        "head": head,
        "at_head": False,
    }
    assert run("db", "current").stdout.strip() == f"{previous} (behind head {head})"
