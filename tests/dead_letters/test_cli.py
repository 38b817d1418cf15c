"""`jobkeeper dead-letters list|show|replay|purge` on dead letters that a real worker produced."""

from __future__ import annotations

import uuid

from jobkeeper import SyncClient
from tests.cli.conftest import History, Run, handlers, output_json, query, running_worker, statuses
from tests.cli.conftest import history as history
from tests.cli.conftest import run as run
from tests.support import client_settings, wait_for

MISSING = "5a1d0c1e-0000-4000-8000-000000000000"


def _second_dead_letter(db_url: str) -> uuid.UUID:
    with SyncClient(db_url, settings=client_settings()) as client:
        job = client.enqueue("boom", {"n": 5}, queue="communication")
    with running_worker(db_url, handlers()):
        wait_for(lambda: statuses(db_url, [job.id]) == {job.id: "failed"}, timeout=15, what="the job to fail")
    return job.id


def test_dead_letters_list_show_replay_purge(run: Run, db_url: str, history: History) -> None:
    second_job = _second_dead_letter(db_url)
    listed = output_json(run("dead-letters", "list", "--json"))
    assert [d["job_id"] for d in listed] == [str(second_job), str(history.failed)]
    in_background = output_json(run("dead-letters", "list", "--queue", "background", "--json"))
    assert [d["job_id"] for d in in_background] == [str(history.failed)]
    assert output_json(run("dead-letters", "list", "--type", "echo", "--json")) == []
    assert len(output_json(run("dead-letters", "list", "--since", "10m", "--not-replayed", "--json"))) == 2
    page = run("dead-letters", "list", "--limit", "1", "--json")
    assert f"--after {listed[0]['id']}" in page.stderr
    after = output_json(run("dead-letters", "list", "--after", listed[0]["id"], "--json"))
    assert [d["id"] for d in after] == [str(history.dead_letter)]
    shown = run("dead-letters", "show", str(history.dead_letter))
    assert shown.exit_code == 0
    assert "PermanentError: card declined" in shown.stdout
    assert '"o-2"' in shown.stdout
    assert output_json(run("dead-letters", "show", str(history.dead_letter), "--json"))["job_id"] == str(
        history.failed
    )
    assert run("dead-letters", "show", MISSING).exit_code == 1

    replayed = output_json(run("dead-letters", "replay", str(history.dead_letter), "--json"))
    assert [(j["type"], j["status"], j["attempts"]) for j in replayed] == [("boom", "pending", 0)]
    assert query(db_url, "SELECT replayed_job_id FROM jobkeeper.dead_letter_jobs WHERE id = %s",
                 (history.dead_letter,)) == [(uuid.UUID(replayed[0]["id"]),)]  # fmt: skip
    twice = run("dead-letters", "replay", str(history.dead_letter), MISSING)
    assert twice.exit_code == 1
    assert "was replayed already" in twice.stderr
    assert f"no dead letter {MISSING}" in twice.stderr
    assert run("dead-letters", "replay").exit_code == 2  # nothing named
    assert run("dead-letters", "replay", str(history.dead_letter), "--queue", "money").exit_code == 2
    by_filter = output_json(run("dead-letters", "replay", "--queue", "communication", "--json"))
    assert [j["queue"] for j in by_filter] == ["communication"]
    assert output_json(run("dead-letters", "replay", "--all", "--json")) == []  # every one replayed already

    refused = run("dead-letters", "purge", "--all")
    assert refused.exit_code == 2
    assert "--yes" in refused.stderr
    assert query(db_url, "SELECT count(*) FROM jobkeeper.dead_letter_jobs") == [(2,)]
    purged = output_json(run("dead-letters", "purge", "--queue", "communication", "--yes", "--json"))
    assert purged[0]["purged"] == 1
    assert query(db_url, "SELECT job_id FROM jobkeeper.dead_letter_jobs") == [(history.failed,)]
    assert run("dead-letters", "purge", MISSING, "--yes").exit_code == 1
    assert output_json(run("dead-letters", "purge", "--all", "--yes", "--json"))[0]["purged"] == 1
    assert query(db_url, "SELECT count(*) FROM jobkeeper.dead_letter_jobs") == [(0,)]
    assert query(db_url, "SELECT count(*) FROM jobkeeper.jobs WHERE status = 'failed'") == [(2,)]  # jobs stay


def test_the_former_verb_dlq_still_runs_and_is_not_listed(run: Run, history: History) -> None:
    # Renamed `dead-letters` in issue 16 (docs/decisions.md); scripts that say `dlq` keep working.
    assert output_json(run("dlq", "list", "--json")) == output_json(run("dead-letters", "list", "--json"))
    listed = run("--help")
    assert "dead-letters" in listed.stdout
    assert "dlq" not in listed.stdout
