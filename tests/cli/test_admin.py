"""`jobkeeper schedules …` and `jobkeeper limits …` against a real database (run as the CLI is run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_")} | {"DATABASE_URL": db_url}
    return subprocess.run([JOBKEEPER, *args], env=env, capture_output=True, text=True, timeout=60)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_schedules_from_the_command_line(db_url: str) -> None:
    added = _json(
        _cli(
            db_url,
            "schedules",
            "add",
            "nightly",
            "--cron",
            "0 2 * * *",
            "--type",
            "generate-report",
            "--timezone",
            "Europe/Paris",
            "--data",
            '{"hours": 24}',
            "--json",
        )
    )
    assert added[0]["name"] == "nightly"
    assert added[0]["next_run_at"] is not None
    listed = _json(_cli(db_url, "schedules", "list", "--json"))
    assert [(s["name"], s["cron"], s["timezone"], s["payload"], s["active"]) for s in listed] == [
        ("nightly", "0 2 * * *", "Europe/Paris", {"hours": 24}, True)
    ]
    assert _json(_cli(db_url, "schedules", "pause", "nightly", "--json"))[0]["active"] is False
    assert _json(_cli(db_url, "schedules", "resume", added[0]["id"], "--json"))[0]["active"] is True
    table = _cli(db_url, "schedules", "list")
    assert "nightly" in table.stdout
    assert "Europe/Paris" in table.stdout

    bad_cron = _cli(db_url, "schedules", "add", "x", "--cron", "61 * * * *", "--type", "t")
    assert bad_cron.returncode == 2
    assert "is not a valid cron expression" in bad_cron.stderr
    bad_zone = _cli(
        db_url, "schedules", "add", "x", "--cron", "* * * * *", "--type", "t", "--timezone", "Mars/Base"
    )
    assert bad_zone.returncode == 2
    duplicate = _cli(
        db_url, "schedules", "add", "nightly", "--cron", "* * * * *", "--type", "generate-report"
    )
    assert duplicate.returncode == 2
    assert "exists already" in duplicate.stderr
    # The job type must be known and the payload valid for it, as at enqueue: a schedule never makes
    # jobs that fail (or that no worker handles) every slot.
    typo = _cli(db_url, "schedules", "add", "x", "--cron", "* * * * *", "--type", "generate-reprot")
    assert typo.returncode == 2
    assert "unknown job type 'generate-reprot' (did you mean 'generate-report'?)" in typo.stderr
    invalid = _cli(
        db_url, "schedules", "add", "x", "--cron", "* * * * *", "--type", "generate-report",
        "--data", '{"hours": "lots"}',
    )  # fmt: skip
    assert invalid.returncode == 2
    assert "--data.hours: Input should be a valid number" in invalid.stderr
    assert _cli(db_url, "schedules", "pause", "nope").returncode == 1

    assert _json(_cli(db_url, "schedules", "delete", "nightly", "--json"))[0]["name"] == "nightly"
    assert _json(_cli(db_url, "schedules", "list", "--json")) == []


def test_limits_from_the_command_line(db_url: str) -> None:
    listed = {row["name"]: row for row in _json(_cli(db_url, "limits", "list", "--json"))}
    assert (listed["stripe"]["rate_per_second"], listed["stripe"]["burst"]) == (100, 20)
    assert listed["twilio"]["waits"] == 0
    changed = _json(_cli(db_url, "limits", "set", "twilio", "--rate", "12.5", "--burst", "3", "--json"))
    assert (changed[0]["rate_per_second"], changed[0]["burst"]) == (12.5, 3)
    assert changed[0]["tokens"] <= 3
    assert (
        _json(_cli(db_url, "limits", "set", "twilio", "--unlimited-concurrency", "--json"))[0][
            "max_concurrency"
        ]
        is None
    )
    assert _cli(db_url, "limits", "set", "nope", "--burst", "2").returncode == 1
    assert _cli(db_url, "limits", "set", "twilio", "--burst", "0").returncode == 2
