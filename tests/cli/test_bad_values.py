"""Values out of any sensible range, or that the database refuses, are input errors: exit 2 with one
`Error:` line, never a traceback and never "the operation failed" (exit 1)."""

from __future__ import annotations

from click.testing import Result

from tests.cli.conftest import Run, output_json


def _refused(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # no exception escaped the command
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr  # (a bad option value also gets click's usage lines)
    return errors[0]


def test_times_too_far_back_are_refused(run: Run) -> None:
    for verb in (["jobs", "list"], ["dlq", "list"]):
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
    job = output_json(run("enqueue", "resize-image", "--data", '{"w": "NaN", "h": "Infinity"}', "--json"))
    for where in ("w=NaN", "h=Infinity"):
        found = output_json(run("jobs", "list", "--where", where, "--json"))
        assert [row["id"] for row in found] == [job["id"]], where
