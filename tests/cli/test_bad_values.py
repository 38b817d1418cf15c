"""Values out of any sensible range, or that the database refuses, are input errors: exit 2 with one
`Error:` line, never a traceback and never "the operation failed" (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result

from tests.cli.conftest import Run, output_json, query


def _refused(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # no exception escaped the command
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr  # (a bad option value also gets click's usage lines)
    return errors[0]


def test_times_too_far_back_are_refused(run: Run) -> None:
    for verb in (["jobs", "list"], ["dead-letters", "list"]):
        for ago in ("99999999999999w", "9999999w", "1" + "0" * 400):
            assert "--since" in _refused(run(*verb, "--since", ago)), (verb, ago)
        assert "--until" in _refused(run(*verb, "--until", "9999999w"))
    assert output_json(run("jobs", "list", "--since", "999w", "--json")) == []


def test_values_the_database_refuses_are_input_errors(run: Run) -> None:
    message = _refused(run("queues", "clean", "background", "--older-than", "99999999999999999w"))
    assert "out of range" in message
    assert "out of range" in _refused(run("workers", "list", "--max-age", "99999999999999999w"))
    assert "invalid value" in _refused(run("jobs", "list", "--where", r'name="\u0000"'))


def test_a_where_value_that_is_not_json_is_text(run: Run) -> None:
    output_json(run("types", "declare", "resize-image", "--json"))
    job = output_json(run("enqueue", "resize-image", "--data", '{"w": "NaN", "h": "Infinity"}', "--json"))
    for where in ("w=NaN", "h=Infinity"):
        found = output_json(run("jobs", "list", "--where", where, "--json"))
        assert [row["id"] for row in found] == [job["id"]], where


def test_bytes_that_are_not_utf8_are_bad_input(run: Run, db_url: str, tmp_path: Path) -> None:
    output_json(run("types", "declare", "resize-image", "--json"))
    good = "".join(json.dumps({"type": "resize-image", "payload": {"n": n}}) + "\n" for n in range(400))
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_bytes(good.encode() + b'{"type": "resize-image", "payload": {"x": "\xff"}}\n')
    message = _refused(run("enqueue", "--file", str(jobs), "--chunk-size", "10"))
    assert "not UTF-8 text" in message
    enqueued = query(db_url, "SELECT count(*) FROM jobkeeper.jobs WHERE type = 'resize-image'")[0][0]
    assert enqueued > 0  # the blocks decoded before the bad bytes went in, in whole chunks
    assert f"({enqueued} jobs, 0 duplicates)" in message
    assert f"--start-line {enqueued + 1}" in message
    payload = tmp_path / "payload.json"
    payload.write_bytes(b'{"x": "\xff"}')
    assert "--data-file: not UTF-8 text" in _refused(
        run("enqueue", "resize-image", "--data-file", str(payload))
    )


def test_rates_and_windows_are_finite_numbers(run: Run, db_url: str) -> None:
    (before,) = query(db_url, "SELECT rate_per_second FROM jobkeeper.rate_limiters WHERE name = 'stripe'")
    for rate in ("nan", "inf", "1e400", "5e-324", "0"):
        assert "'--rate'" in _refused(run("limits", "set", "stripe", "--rate", rate)), rate
    assert query(db_url, "SELECT rate_per_second FROM jobkeeper.rate_limiters WHERE name = 'stripe'") == [
        before
    ]
    for window in ("nan", "inf", "1e400"):
        refused = run(
            "schedules", "add", "s", "--cron", "* * * * *", "--type", "x", "--catch-up-window", window
        )
        assert "'--catch-up-window'" in _refused(refused), window
    assert query(db_url, "SELECT count(*) FROM jobkeeper.schedules") == [(0,)]
    for option in ("--rate", "--burst", "--max-concurrency"):  # the API's bounds
        assert "1000000" in _refused(run("limits", "set", "stripe", option, "1000001")), option
    long_window = run(
        "schedules", "add", "s", "--cron", "* * * * *", "--type", "x", "--catch-up-window", "2592001"
    )
    assert "2592000" in _refused(long_window)
    changed = output_json(run("limits", "set", "stripe", "--rate", "2.5", "--json"))
    assert changed[0]["rate_per_second"] == 2.5


def test_a_value_a_check_constraint_refuses_is_bad_input(run: Run) -> None:
    refused = run("schedules", "add", "x" * 500, "--cron", "* * * * *", "--type", "generate-report")
    assert "schedules_name_check" in _refused(refused)


def test_json_nested_too_deeply_for_the_parser_is_bad_input(run: Run, tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    data = tmp_path / "deep.json"
    data.write_text(deep)
    assert "nested too deeply" in _refused(run("enqueue", "resize-image", "--data-file", str(data)))
    assert "nested too deeply" in _refused(run("enqueue", "resize-image", "--data", deep))
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"type": "resize-image", "payload": {"a": ' + deep + "}}\n")
    assert "line 1: JSON nested too deeply" in _refused(run("enqueue", "--file", str(lines)))
    assert "nested too deeply" in _refused(run("jobs", "list", "--where", "a=" + deep))
    schedule = run("schedules", "add", "s", "--cron", "* * * * *", "--type", "x", "--data", deep)
    assert "nested too deeply" in _refused(schedule)


def test_the_wrong_word_for_a_jobs_data_points_at_the_right_one(run_shared: Run, tmp_path: Path) -> None:
    # docs/decisions.md, "One word for a job's data": `--data` on the command line, `payload` in JSON lines.
    for verb in (["enqueue", "send-sms"], ["schedules", "add", "s", "--cron", "* * * * *", "--type", "x"]):
        message = _refused(run_shared(*verb, "--payload", "{}"))
        assert "--payload is not an option here: use --data" in message, verb
    lines = tmp_path / "jobs.jsonl"
    lines.write_text('{"type": "resize-image", "data": {"w": 1}}\n')
    assert "did you mean 'payload'?" in _refused(run_shared("enqueue", "--file", str(lines)))
