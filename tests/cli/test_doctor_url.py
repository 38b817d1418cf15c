"""doctor with a DATABASE_URL that is set but invalid: a configuration problem, not "DATABASE_URL is
unset", and no look at the embedded server (which is not the database the user named)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run
from tests.cli.test_doctor import _checks


def test_an_invalid_database_url_is_not_reported_as_unset(run: Run, tmp_path: Path) -> None:
    result = run(
        "doctor",
        "--json",
        "--no-api",
        env={"DATABASE_URL": "mysql://db/x", "JOBKEEPER_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    checks = _checks(result)
    assert [c["status"] for c in checks["configuration"]] == ["fail"]
    assert "DATABASE_URL" in checks["configuration"][0]["message"]
    (database,) = checks["database"]
    assert database["status"] == "skip"
    assert database["message"] == "not checked: DATABASE_URL is invalid (see configuration)"
    assert "unset" not in result.stdout
    assert "embedded" not in result.stdout
