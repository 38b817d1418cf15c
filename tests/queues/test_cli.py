"""`jobkeeper queues list|pause|resume|clean` against a real database."""

from __future__ import annotations

from tests.cli.conftest import History, Run, output_json, query
from tests.cli.conftest import history as history
from tests.cli.conftest import run as run


def test_queues_list_pause_resume_clean(run: Run, db_url: str, history: History) -> None:
    queues = {q["name"]: q for q in output_json(run("queues", "list", "--json"))}
    assert set(queues) == {"background", "communication", "money"}
    background = queues["background"]
    assert (background["completed"], background["failed"], background["scheduled"]) == (1, 1, 1)
    assert (background["waiting"], background["dead_letters"], background["paused"]) == (0, 1, False)
    table = run("queues", "list")
    assert table.exit_code == 0
    assert "oldest_wait" in table.stdout
    assert "background" in table.stdout

    paused = output_json(run("queues", "pause", "background", "--json"))
    assert paused == [{**paused[0], "name": "background", "paused": True}]
    assert query(db_url, "SELECT paused FROM jobkeeper.queues WHERE name = 'background'") == [(True,)]
    assert output_json(run("queues", "list", "--json"))[0]["paused"] is True
    assert output_json(run("queues", "resume", "background", "--json"))[0]["paused"] is False
    assert query(db_url, "SELECT paused FROM jobkeeper.queues WHERE name = 'background'") == [(False,)]
    unknown = run("queues", "pause", "backgrund")
    assert unknown.exit_code == 1
    assert "did you mean 'background'" in unknown.stderr

    # clean, on the same history
    kept = output_json(run("queues", "clean", "background", "--older-than", "1d", "--json"))
    assert kept == [{"queue": "background", "statuses": ["completed"], "deleted": 0}]
    cleaned = output_json(run("queues", "clean", "background", "--json"))
    assert cleaned[0]["deleted"] == 1
    remaining = query(db_url, "SELECT id FROM jobkeeper.jobs ORDER BY created_at")
    assert remaining == [(history.failed,), (history.pending,)]  # failed and pending jobs are kept
    failed = run("queues", "clean", "background", "--status", "failed", "--status", "cancelled")
    assert failed.exit_code == 0
    assert "1" in failed.stdout
    assert query(db_url, "SELECT id FROM jobkeeper.jobs") == [(history.pending,)]
    assert query(db_url, "SELECT count(*) FROM jobkeeper.dead_letter_jobs") == [(1,)]  # dead letters stay
    assert run("queues", "clean", "background", "--status", "pending").exit_code == 2
    assert run("queues", "clean", "nope").exit_code == 1
