"""The worker's settings and the `jobkeeper worker` command line, without a database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from jobkeeper import ConfigError, Settings
from jobkeeper.cli import main
from jobkeeper.worker import Registry


def test_worker_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "JOBKEEPER_IMPORTS": "myapp.tasks, myapp.billing.handlers",
            "JOBKEEPER_WORKER_QUEUES": "money,communication",
            "JOBKEEPER_WORKER_CONCURRENCY": "20",
            "JOBKEEPER_WORKER_BATCH_SIZE": "5",
            "JOBKEEPER_POLL_INTERVAL": "0.5",
            "JOBKEEPER_SHUTDOWN_TIMEOUT": "12",
            "JOBKEEPER_LEASE_SECONDS": "60",
            "JOBKEEPER_HEARTBEAT_INTERVAL": "5",
        }
    )
    assert settings.imports == ("myapp.tasks", "myapp.billing.handlers")
    assert settings.worker_queues == ("money", "communication")
    assert (settings.worker_concurrency, settings.worker_batch_size) == (20, 5)
    assert (settings.poll_interval, settings.shutdown_timeout) == (0.5, 12.0)
    assert (settings.lease_seconds, settings.heartbeat_every) == (60.0, 5.0)


def test_worker_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.imports == ()
    assert settings.poll_interval == 1.0
    assert settings.shutdown_timeout == 30.0
    assert settings.heartbeat_every == settings.lease_seconds / 3 == 10.0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JOBKEEPER_IMPORTS": "myapp.tasks,not a module"}, "JOBKEEPER_IMPORTS"),
        ({"JOBKEEPER_POLL_INTERVAL": "0"}, "JOBKEEPER_POLL_INTERVAL"),
        ({"JOBKEEPER_WORKER_CONCURRENCY": "0"}, "JOBKEEPER_WORKER_CONCURRENCY"),
        ({"JOBKEEPER_HEARTBEAT_INTERVAL": "30"}, "less than JOBKEEPER_LEASE_SECONDS"),
    ],
)
def test_bad_worker_settings_name_their_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)


def test_the_worker_command_needs_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBKEEPER_IMPORTS", raising=False)
    # Handler modules other tests import register into the process-wide default registry.
    monkeypatch.setattr("jobkeeper.process.runtime.default_registry", Registry())
    result = CliRunner().invoke(main, ["worker", "--no-builtins"])
    assert result.exit_code == 2
    assert "--import MODULE" in result.output


def test_the_worker_command_reports_a_module_it_cannot_import() -> None:
    result = CliRunner().invoke(main, ["worker", "--import", "tests.worker.no_such_module"])
    assert result.exit_code == 2
    assert "cannot import handler module 'tests.worker.no_such_module'" in result.output
