"""`jobkeeper enqueue`: from arguments and from JSON-lines files, against a real database."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path

from jobkeeper.cli.enqueue import PROGRESS_MIN_BYTES
from tests.cli.conftest import Run, output_json, query
from tests.cli.conftest import run as run

JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")
OTHER_TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000a2")


def _count(db_url: str, job_type: str) -> int:
    return int(query(db_url, "SELECT count(*) FROM jobkeeper.jobs WHERE type = %s", (job_type,))[0][0])


def test_enqueue_from_arguments_and_bad_input(run: Run, db_url: str, tmp_path: Path) -> None:
    declared = output_json(run("types", "declare", "resize-image", "--json"))
    assert declared == [
        {
            "name": "resize-image",
            "queue": "background",
            "max_attempts": None,
            "priority": None,
            "builtin": False,
        }
    ]
    listed = output_json(run("types", "list", "--json"))
    assert {row["name"]: row["builtin"] for row in listed}["resize-image"] is False
    query(
        db_url, "INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, 'Acme', 'acme')", (OTHER_TENANT,)
    )
    job = output_json(
        run(
            "enqueue", "resize-image", "--queue", "communication", "--data", '{"w": 800}', "--priority", "9",
            "--delay", "2h", "--attempts", "4", "--idempotency-key", "img-1", "--tenant", str(OTHER_TENANT),
            "--json",
        )
    )  # fmt: skip
    ((queue, priority, attempts, key, tenant, payload, delay),) = query(
        db_url,
        "SELECT queue, priority, max_attempts, idempotency_key, tenant_id, payload,"
        " extract(epoch FROM scheduled_at - created_at) FROM jobkeeper.jobs WHERE id = %s",
        (uuid.UUID(job["id"]),),
    )
    assert (queue, priority, attempts, key, tenant, payload) == (
        "communication",
        9,
        4,
        "img-1",
        OTHER_TENANT,
        {"w": 800},
    )
    assert 7199 <= float(delay) <= 7201
    assert job["deduplicated"] is False

    again = output_json(
        run("enqueue", "resize-image", "--idempotency-key", "img-1", "--tenant", str(OTHER_TENANT), "--json")
    )
    assert (again["id"], again["deduplicated"]) == (job["id"], True)
    assert _count(db_url, "resize-image") == 1

    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"to": "ann@example.com", "template": "receipt"}')
    table = run("enqueue", "send-email", "--data-file", str(payload_file))
    assert table.exit_code == 0, table.output
    assert "communication" in table.stdout
    assert "send-email" in table.stdout
    from_stdin = run("enqueue", "cleanup-old-data", "--data-file", "-", input='{"finished_jobs": 2592000}')
    assert from_stdin.exit_code == 0, from_stdin.output
    assert query(db_url, "SELECT payload FROM jobkeeper.jobs WHERE type = 'cleanup-old-data'") == [
        ({"finished_jobs": 2592000},)
    ]

    # bad input: exit 2, one line, nothing enqueued
    before = query(db_url, "SELECT count(*) FROM jobkeeper.jobs")
    malformed = run("enqueue", "send-email", "--data", '{"to": ')
    assert malformed.exit_code == 2
    assert "--data is not JSON" in malformed.stderr
    assert "column" in malformed.stderr
    not_object = run("enqueue", "send-email", "--data", "[1, 2]")
    assert not_object.exit_code == 2
    assert "must be a JSON object" in not_object.stderr
    unknown_queue = run("enqueue", "send-email", "--queue", "mony")
    assert unknown_queue.exit_code == 2
    assert "did you mean 'money'" in unknown_queue.stderr
    nobody = uuid.uuid4()
    unknown_tenant = run("enqueue", "send-email", "--tenant", str(nobody), "--data-file", str(payload_file))
    assert unknown_tenant.exit_code == 2
    assert f"no tenant with id {nobody}" in unknown_tenant.stderr
    invalid = run("enqueue", "send-email", "--data", '{"to": "not-an-email", "template": "receipt"}')
    assert invalid.exit_code == 2
    assert "payload.to: is not a valid email address" in invalid.stderr
    hours = run("enqueue", "generate-report", "--data", '{"hours": "lots"}')
    assert (hours.exit_code, "payload.hours" in hours.stderr) == (2, True)
    typo = run("enqueue", "generate-reprot")
    assert typo.exit_code == 2
    assert "unknown job type 'generate-reprot' (did you mean 'generate-report'?)" in typo.stderr
    assert run("types", "declare", "x", "--queue", "mony").exit_code == 2
    assert run("types", "declare", "payment-process", "--queue", "background").exit_code == 2
    assert run("enqueue").exit_code == 2
    assert run("enqueue", "x", "--data", "{}", "--data-file", "-").exit_code == 2
    assert run("enqueue", "x", "--priority", "11").exit_code == 2
    assert run("enqueue", "x", "--delay", "soon").exit_code == 2
    assert run("enqueue", "x", "--file", "-", input="").exit_code == 2  # TYPE and --file
    assert "Traceback" not in malformed.output
    assert query(db_url, "SELECT count(*) FROM jobkeeper.jobs") == before


def _lines(count: int, *, bad: dict[int, str] | None = None) -> str:
    lines = [json.dumps({"type": "import-row", "payload": {"n": n}}) for n in range(1, count + 1)]
    for number, text in (bad or {}).items():
        lines[number - 1] = text
    return "\n".join(lines) + "\n"


def test_enqueue_a_file_in_chunks(run: Run, db_url: str, tmp_path: Path) -> None:
    output_json(run("types", "declare", "import-row", "--json"))
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(_lines(2500) + "\n")  # a blank line is skipped
    summary = output_json(
        run("enqueue", "--file", str(jobs), "--chunk-size", "1000", "--queue", "money", "--json")
    )
    assert (summary["lines"], summary["enqueued"], summary["duplicates"]) == (2500, 2500, 0)
    assert query(
        db_url,
        "SELECT count(*), count(DISTINCT payload), min(queue) FROM jobkeeper.jobs WHERE type = 'import-row'",
    ) == [(2500, 2500, "money")]  # --queue fills in what a line leaves out

    keyed = (
        '{"type": "payout-process", "payload": {"venueId": "v1", "period": "2026-10"}, "queue": "money"}\n'
    )
    from_stdin = output_json(run("enqueue", "--file", "-", "--json", input=keyed * 3))
    assert (from_stdin["enqueued"], from_stdin["duplicates"]) == (1, 2)

    # a file of 1 MiB or more shows a progress bar when stderr is a terminal
    line = json.dumps({"type": "import-row", "payload": {"pad": "x" * 2000}}) + "\n"
    big = tmp_path / "big.jsonl"
    count = PROGRESS_MIN_BYTES // len(line) + 1
    big.write_text(line * count)  # just over the threshold
    status, drawn, stdout = _enqueue_on_a_terminal(db_url, big)
    assert status == 0
    assert b"enqueueing" in drawn
    assert b"100%" in drawn
    assert f"enqueued {count} jobs".encode() in stdout

    query(db_url, "DELETE FROM jobkeeper.jobs")

    # a bad line stops the command at its chunk, and is named
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(_lines(2500, bad={1503: '{"type": "import-row", "payload": {"n": 1503}'}))
    stopped = run("enqueue", "--file", str(jobs), "--chunk-size", "1000")
    assert stopped.exit_code == 2
    assert stopped.stderr.startswith("Error: line 1503: not JSON")
    assert "--start-line 1001" in stopped.stderr
    assert _count(db_url, "import-row") == 1000  # the first chunk; nothing of the one with line 1503

    jobs.write_text(_lines(2500))  # fixed: resume where it stopped
    resumed = output_json(
        run("enqueue", "--file", str(jobs), "--chunk-size", "1000", "--start-line", "1001", "--json")
    )
    assert resumed["enqueued"] == 1500
    assert query(db_url, "SELECT count(DISTINCT payload) FROM jobkeeper.jobs WHERE type = 'import-row'") == [
        (2500,)
    ]
    query(db_url, "DELETE FROM jobkeeper.jobs")

    # an invalid job is located; --atomic enqueues nothing
    jobs.write_text(_lines(30, bad={27: '{"type": "send-sms", "priority": 11}'}))
    atomic = run("enqueue", "--file", str(jobs), "--chunk-size", "10", "--atomic")
    assert atomic.exit_code == 2
    assert "line 27: priority: must be from 1 to 10, got 11; nothing was enqueued" in atomic.stderr
    assert _count(db_url, "import-row") == 0

    not_object = tmp_path / "list.jsonl"
    not_object.write_text('{"type": "a"}\n[1]\n')
    result = run("enqueue", "--file", str(not_object))
    assert result.exit_code == 2
    assert "line 2: expected a JSON object" in result.stderr

    big = tmp_path / "big.jsonl"
    big.write_text(_lines(50))
    shown = run("enqueue", "--file", str(big), "--progress", "--chunk-size", "20")
    assert shown.exit_code == 0, shown.output
    assert "enqueueing" in shown.stderr  # the bar (drawn in full only on a terminal)
    assert "enqueued 50 jobs" in shown.stdout
    assert _count(db_url, "import-row") == 50


def _enqueue_on_a_terminal(db_url: str, path: Path) -> tuple[int, bytes, bytes]:
    """`jobkeeper enqueue --file PATH` with its stderr on a pseudo-terminal: exit status, what it drew
    there, and its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_")} | {"DATABASE_URL": db_url}
    master, terminal = pty.openpty()
    process = subprocess.Popen(
        [JOBKEEPER, "enqueue", "--file", str(path)], env=env, stdout=subprocess.PIPE, stderr=terminal
    )
    os.close(terminal)
    drawn = b""
    with contextlib.suppress(OSError):  # EIO once the command has exited
        while chunk := os.read(master, 4096):
            drawn += chunk
    os.close(master)
    stdout, _ = process.communicate(timeout=60)
    return process.returncode, drawn, stdout
