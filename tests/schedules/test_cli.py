"""`jobkeeper schedules`: add (the minimum interval and the per-tenant cap, as in the API: exit 2), pause,
resume and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import Result

from tests.cli.conftest import Run, output_json, query
from tests.cli.conftest import run as run


def _refused(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_schedule_faster_than_the_minimum_interval_is_refused(run: Run, db_url: str) -> None:
    add = ("schedules", "add", "beat", "--type", "generate-report", "--cron")
    message = _refused(run(*add, "*/5 * * * * *"))
    assert "fires 5 s apart, more often than the minimum interval of 60 s" in message
    assert "JOBKEEPER_SCHEDULE_MIN_INTERVAL" in message
    assert query(db_url, "SELECT count(*) FROM jobkeeper.schedules") == [(0,)]
    # The operator lowers the setting to allow it.
    allowed = run(*add, "*/5 * * * * *", env={"JOBKEEPER_SCHEDULE_MIN_INTERVAL": "5"})
    assert allowed.exit_code == 0, allowed.output


def test_a_tenant_may_have_at_most_its_cap_of_schedules(run: Run, db_url: str) -> None:
    env = {"JOBKEEPER_SCHEDULES_PER_TENANT": "2"}
    for name in ("one", "two"):
        added = run("schedules", "add", name, "--cron", "0 3 * * *", "--type", "generate-report", env=env)
        assert added.exit_code == 0, added.output
    third = run("schedules", "add", "three", "--cron", "0 3 * * *", "--type", "generate-report", env=env)
    assert "has 2 schedules, the most allowed (JOBKEEPER_SCHEDULES_PER_TENANT)" in _refused(third)


def test_pause_resume_and_delete_have_the_apis_meaning(run: Run, db_url: str) -> None:
    """Paused, a schedule has no next run; resumed, it fires from its next slot after now, as through the
    API and the dashboard (the CLI used to keep the next run on pause and leave it empty on resume)."""
    added = output_json(
        run("schedules", "add", "nightly", "--cron", "0 3 * * *", "--type", "generate-report", "--json")
    )
    schedule_id = added[0]["id"]
    paused = output_json(run("schedules", "pause", "nightly", "--json"))
    assert (paused[0]["id"], paused[0]["active"], paused[0]["next_run_at"]) == (schedule_id, False, None)
    resumed = output_json(run("schedules", "resume", schedule_id, "--json"))
    assert resumed[0]["active"] is True
    next_run = datetime.fromisoformat(resumed[0]["next_run_at"])
    now = datetime.now(UTC)
    assert now < next_run <= now + timedelta(days=1)
    assert (next_run.hour, next_run.minute) == (3, 0)
    missing = run("schedules", "pause", "no-such-schedule")
    assert missing.exit_code == 1
    assert "no schedule 'no-such-schedule'" in missing.stderr
    deleted = output_json(run("schedules", "delete", "nightly", "--json"))
    assert deleted == [{"id": schedule_id, "name": "nightly"}]
    assert query(db_url, "SELECT count(*) FROM jobkeeper.schedules") == [(0,)]
    assert run("schedules", "delete", "nightly").exit_code == 1
