from __future__ import annotations

import logging
import uuid
from pathlib import Path

import psycopg
import pytest

from jobkeeper import ConfigError, Settings
from jobkeeper.types import DEV_TENANT_ID


def test_defaults_match_the_documented_pool_and_timeouts() -> None:
    settings = Settings.from_env({})
    assert (settings.pool_min, settings.pool_max) == (2, 10)
    assert settings.database_url is None
    assert settings.default_tenant == DEV_TENANT_ID
    assert settings.max_payload_bytes == 256 * 1024


def test_every_setting_is_read_from_its_variable(tmp_path: Path) -> None:
    cert = tmp_path / "root.crt"
    cert.write_text("x")
    tenant = uuid.uuid4()
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:p@db.example:5432/app",
            "JOBKEEPER_DATA_DIR": str(tmp_path / "data"),
            "JOBKEEPER_POOL_MIN": "3",
            "JOBKEEPER_POOL_MAX": "7",
            "JOBKEEPER_DB_CONNECT_TIMEOUT": "4",
            "JOBKEEPER_DB_ACQUIRE_TIMEOUT": "2.5",
            "JOBKEEPER_DB_IDLE_TIMEOUT": "60",
            "JOBKEEPER_DB_STATEMENT_TIMEOUT": "12",
            "JOBKEEPER_DB_IDLE_IN_TRANSACTION_TIMEOUT": "9",
            "JOBKEEPER_DB_SSLMODE": "verify-full",
            "JOBKEEPER_DB_SSLROOTCERT": str(cert),
            "JOBKEEPER_DEFAULT_TENANT": str(tenant),
            "JOBKEEPER_MAX_PAYLOAD_BYTES": "1000",
            "JOBKEEPER_LOG_LEVEL": "debug",
        }
    )
    assert settings.database_url == "postgresql://u:p@db.example:5432/app"
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert (settings.pool_min, settings.pool_max) == (3, 7)
    assert settings.acquire_timeout == 2.5
    assert settings.idle_timeout == 60
    assert settings.sslmode == "verify-full"
    assert settings.sslrootcert == cert
    assert settings.default_tenant == tenant
    assert settings.max_payload_bytes == 1000
    assert settings.log_level == "DEBUG"
    kwargs = settings.connection_kwargs()
    assert kwargs["connect_timeout"] == 4
    assert "statement_timeout=12000" in kwargs["options"]
    assert "idle_in_transaction_session_timeout=9000" in kwargs["options"]
    assert kwargs["sslmode"] == "verify-full"
    assert kwargs["sslrootcert"] == str(cert)
    # The keywords reach libpq's connection string unchanged.
    conninfo = psycopg.conninfo.make_conninfo(settings.database_url or "", **kwargs)
    parsed = psycopg.conninfo.conninfo_to_dict(conninfo)
    assert parsed["sslmode"] == "verify-full"
    assert parsed["sslrootcert"] == str(cert)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("JOBKEEPER_POOL_MAX", "abc", "JOBKEEPER_POOL_MAX must be a whole number ≥ 1, got 'abc'"),
        ("JOBKEEPER_POOL_MAX", "0", "JOBKEEPER_POOL_MAX must be a whole number ≥ 1, got '0'"),
        ("JOBKEEPER_POOL_MIN", "-1", "JOBKEEPER_POOL_MIN must be a whole number ≥ 0, got '-1'"),
        (
            "JOBKEEPER_DB_STATEMENT_TIMEOUT",
            "soon",
            "JOBKEEPER_DB_STATEMENT_TIMEOUT must be a number of seconds",
        ),
        ("JOBKEEPER_DB_ACQUIRE_TIMEOUT", "nan", "JOBKEEPER_DB_ACQUIRE_TIMEOUT must be a number of seconds"),
        ("JOBKEEPER_DB_SSLMODE", "verify_full", "did you mean 'verify-full'?"),
        (
            "JOBKEEPER_DB_SSLROOTCERT",
            "/nonexistent/root.crt",
            "JOBKEEPER_DB_SSLROOTCERT must name a readable file",
        ),
        ("JOBKEEPER_DEFAULT_TENANT", "dev", "JOBKEEPER_DEFAULT_TENANT must be a UUID"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must be a PostgreSQL URL"),
        ("JOBKEEPER_LOG_LEVEL", "LOUD", "JOBKEEPER_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_malformed_values_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_pool_min_above_max_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match="JOBKEEPER_POOL_MIN \\(5\\) must not exceed JOBKEEPER_POOL_MAX \\(3\\)"
    ):
        Settings.from_env({"JOBKEEPER_POOL_MIN": "5", "JOBKEEPER_POOL_MAX": "3"})


def test_a_password_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": "mysql://admin:hunter2@db/x"})
    assert "hunter2" not in str(caught.value)


def test_unknown_jobkeeper_variables_are_reported_with_a_suggestion(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jobkeeper.config"):
        Settings.from_env({"JOBKEEPER_POOL_MAXX": "3"})
    assert "ignoring unknown setting JOBKEEPER_POOL_MAXX; did you mean JOBKEEPER_POOL_MAX?" in caplog.text


def test_blank_values_fall_back_to_defaults() -> None:
    assert Settings.from_env({"JOBKEEPER_POOL_MAX": "  "}).pool_max == 10


def test_overrides_win_over_the_environment() -> None:
    assert Settings.from_env({"JOBKEEPER_POOL_MAX": "9"}, pool_max=4).pool_max == 4
