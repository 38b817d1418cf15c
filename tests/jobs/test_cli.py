"""`jobkeeper jobs list|show|retry|cancel|wait` on jobs that real workers ran."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobkeeper import SyncClient
from jobkeeper.cli import jobs as cli_jobs
from tests.cli.conftest import (
    History,
    Run,
    cli_env,
    handlers,
    output_json,
    query,
    running_worker,
    statuses,
)
from tests.cli.conftest import history as history
from tests.cli.conftest import run as run
from tests.support import client_settings, wait_for

JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")
MISSING = "5a1d0c1e-0000-4000-8000-000000000000"


def test_jobs_list_and_show(run: Run, history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = output_json(run("jobs", "list", "--json"))
    assert [job["id"] for job in listed] == [
        str(history.pending),
        str(history.failed),
        str(history.completed),
    ]
    failed = output_json(run("jobs", "list", "--status", "failed", "--json"))
    assert [(j["id"], j["type"], j["last_error"]) for j in failed] == [
        (str(history.failed), "boom", "PermanentError: card declined")
    ]
    both = output_json(run("jobs", "list", "--status", "failed", "--status", "completed", "--json"))
    assert len(both) == 2
    assert [j["type"] for j in output_json(run("jobs", "list", "--type", "echo", "--json"))] == ["echo"]
    assert len(output_json(run("jobs", "list", "--queue", "background", "--json"))) == 3
    assert output_json(run("jobs", "list", "--queue", "money", "--json")) == []
    by_payload = output_json(run("jobs", "list", "--where", "order.id=o-2", "--json"))
    assert [j["id"] for j in by_payload] == [str(history.failed)]
    assert [j["type"] for j in output_json(run("jobs", "list", "--where", "n=3", "--json"))] == ["later"]
    assert output_json(run("jobs", "list", "--where", 'n="3"', "--json")) == []  # a string is not the number
    with monkeypatch.context() as patch:  # a payload filter's window of one job: it goes on window by window
        patch.setattr(cli_jobs, "PAYLOAD_SCAN", 1)
        oldest = output_json(run("jobs", "list", "--where", "n=1", "--json"))
        assert [j["id"] for j in oldest] == [str(history.completed)]
        two = output_json(run("jobs", "list", "--where", "order.id=o-1", "--limit", "2", "--json"))
        assert [j["id"] for j in two] == [str(history.completed)]
    assert len(output_json(run("jobs", "list", "--since", "1h", "--json"))) == 3
    assert output_json(run("jobs", "list", "--until", "1h", "--json")) == []
    assert output_json(run("jobs", "list", "--since", "2999-01-01T00:00:00Z", "--json")) == []
    other = str(uuid.uuid4())
    assert output_json(run("jobs", "list", "--tenant", other, "--json")) == []

    first = run("jobs", "list", "--limit", "2", "--json")
    page = output_json(first)
    assert [j["id"] for j in page] == [str(history.pending), str(history.failed)]
    assert f"--after {history.failed}" in first.stderr
    rest = output_json(run("jobs", "list", "--limit", "2", "--after", str(history.failed), "--json"))
    assert [j["id"] for j in rest] == [str(history.completed)]

    table = run("jobs", "list", "--status", "failed")
    assert table.exit_code == 0
    assert "1/2" in table.stdout  # attempts of the attempt budget
    assert "PermanentError: card declined" in table.stdout

    assert run("jobs", "list", "--after", MISSING).exit_code == 1
    assert run("jobs", "list", "--after", "nope").exit_code == 2
    assert run("jobs", "list", "--since", "yesterday").exit_code == 2
    assert run("jobs", "list", "--where", "novalue").exit_code == 2
    assert run("jobs", "list", "--status", "dead").exit_code == 2

    # jobs show, on the same history
    done = output_json(run("jobs", "show", str(history.completed), "--json"))
    assert (done["status"], done["result"], done["attempts"]) == (
        "completed",
        {"echo": {"order": {"id": "o-1"}, "n": 1}},
        1,
    )
    failed = output_json(run("jobs", "show", str(history.failed), "--json"))
    assert failed["dead_letter_id"] == str(history.dead_letter)
    assert [(e["attempt"], e["type"], e["message"]) for e in failed["errors"]] == [
        (1, "PermanentError", "card declined")
    ]

    table = run("jobs", "show", str(history.failed), "--traceback")
    assert table.exit_code == 0
    assert "attempt 1 at" in table.stdout
    assert "PermanentError: card declined" in table.stdout
    assert "raise PermanentError" in table.stdout  # the traceback tail
    assert '"o-2"' in table.stdout  # the payload

    unknown = run("jobs", "show", MISSING)
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, f"Error: no job {MISSING}")
    malformed = run("jobs", "show", "42")
    assert malformed.exit_code == 2
    assert "is not a job id" in malformed.stderr


def test_jobs_retry_and_cancel(run: Run, db_url: str, history: History) -> None:
    retried = output_json(run("jobs", "retry", str(history.failed), "--json"))
    assert (retried["status"], retried["attempts"]) == ("pending", 0)
    row = query(
        db_url, "SELECT status, attempts, errors FROM jobkeeper.jobs WHERE id = %s", (history.failed,)
    )
    assert [(status, attempts, len(errors)) for status, attempts, errors in row] == [("pending", 0, 1)]
    assert query(db_url, "SELECT replayed_job_id FROM jobkeeper.dead_letter_jobs WHERE id = %s",
                 (history.dead_letter,)) == [(history.failed,)]  # fmt: skip
    again = run("jobs", "retry", str(history.completed))
    assert again.exit_code == 1
    assert "is completed: only failed or cancelled jobs can be retried" in again.stderr
    assert run("jobs", "retry", MISSING).exit_code == 1

    cancelled = output_json(run("jobs", "cancel", str(history.pending), "--json"))
    assert (cancelled["status"], cancelled["cancel"]) == ("cancelled", "done")
    assert query(db_url, "SELECT status FROM jobkeeper.jobs WHERE id = %s", (history.pending,)) == [
        ("cancelled",)
    ]
    assert run("jobs", "cancel", str(history.pending)).exit_code == 0  # already cancelled: nothing to do
    finished = run("jobs", "cancel", str(history.completed))
    assert finished.exit_code == 1
    assert "is completed already" in finished.stderr
    assert query(db_url, "SELECT status FROM jobkeeper.jobs WHERE id = %s", (history.completed,)) == [
        ("completed",)
    ]
    assert run("jobs", "cancel", MISSING).exit_code == 1
    # the cancelled job can be retried
    assert output_json(run("jobs", "retry", str(history.pending), "--json"))["status"] == "pending"


def test_jobs_wait_exit_status_follows_the_job(run: Run, db_url: str, history: History) -> None:
    done = run("jobs", "wait", str(history.completed), "--json")
    assert done.exit_code == 0
    assert output_json(done)["status"] == "completed"
    failed = run("jobs", "wait", str(history.failed))
    assert failed.exit_code == 1
    assert "failed: PermanentError: card declined" in failed.stderr
    assert failed.stderr.startswith(f"Error: job {history.failed} failed")  # one Error: line, as every error
    timed_out = run("jobs", "wait", str(history.pending), "--timeout", "0.3")
    assert timed_out.exit_code == 124
    assert "still pending after 0.3 s" in timed_out.stderr
    assert timed_out.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert run("jobs", "wait", MISSING).exit_code == 1

    # A real wait: the command polls before the job runs, and ends when a worker completes it.
    with SyncClient(db_url, settings=client_settings()) as client:
        job = client.enqueue("echo", {"n": 4})
        slow = client.enqueue("slow", {"seconds": 60})
    env = {k: v for k, v in cli_env(db_url).items() if v is not None}
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_")} | env
    waiter = subprocess.Popen(
        [JOBKEEPER, "jobs", "wait", str(job.id), "--timeout", "60", "--json"],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: _cli_sessions(db_url) > 0 or waiter.poll() is not None, timeout=30, what="the waiter"
        )
        assert query(db_url, "SELECT status FROM jobkeeper.jobs WHERE id = %s", (job.id,)) == [("pending",)]
        with running_worker(db_url, handlers()):
            out, err = waiter.communicate(timeout=60)
            # cancelling a running job asks its worker to stop it
            wait_for(lambda: statuses(db_url, [slow.id]) == {slow.id: "processing"}, timeout=15, what="slow")
            asked = output_json(run("jobs", "cancel", str(slow.id), "--json"))
            assert (asked["status"], asked["cancel"]) == ("processing", "requested")
            cancelled = run("jobs", "wait", str(slow.id), "--timeout", "15")
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert '"status": "completed"' in out
    assert '"echo"' in out
    assert cancelled.exit_code == 1
    assert f"job {slow.id} cancelled" in cancelled.stderr


def _cli_sessions(db_url: str) -> int:
    """Connections of jobkeeper commands to this test's database (the waiter's, here)."""
    rows = query(
        db_url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'jobkeeper'",
    )
    return int(rows[0][0])


def test_jobs_wait_summarises_a_long_result(run: Run, db_url: str) -> None:
    registry = handlers()
    page = "<html><head><title>Queue report</title></head><body>" + "<td>1</td>" * 5000 + "</body></html>"

    @registry.task("report-like", queue="background")
    async def report_like(payload: dict[str, object], ctx: object) -> dict[str, object]:
        return {"storage": "result", "html": page, "summary": {"jobs": 3}}

    with SyncClient(db_url, settings=client_settings()) as client:
        client.declare_type("report-like", queue="background")
        job = client.enqueue("report-like", {})
    with running_worker(db_url, registry):
        wait_for(lambda: statuses(db_url, [job.id])[job.id] == "completed", timeout=30, what="the job")
    shown = run("jobs", "wait", str(job.id))
    assert shown.exit_code == 0, shown.output
    assert "<td>" not in shown.stdout  # not the document itself
    size = len(page.encode())
    assert f"HTML 'Queue report', {size:,} bytes" in shown.stdout
    assert f"jobkeeper jobs wait {job.id} --json" in shown.stdout
    assert '"summary":{"jobs":3}' in shown.stdout
    assert output_json(run("jobs", "wait", str(job.id), "--json"))["result"]["html"] == page
