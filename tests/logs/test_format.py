"""Log output: JSON lines with the job's fields, console lines when asked, a rotating file, stdlib bridged."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from jobkeeper.config import Settings
from jobkeeper.logs import JOB_FIELDS, configure_logging, resolve_format
from jobkeeper.process.supervisor import _own_log_file
from jobkeeper.types import Job, JobStatus, Tier
from jobkeeper.worker.context import job_logger
from jobkeeper.worker.executor import log_failure


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _job(**changes: Any) -> Job:
    values: dict[str, Any] = {field: None for field in Job.__dataclass_fields__}
    values.update(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        queue="communication",
        type="send-email",
        tier=Tier.FAST,
        status=JobStatus.PROCESSING,
        attempts=2,
        max_attempts=3,
        payload={},
        created_at=datetime.now(UTC),
    )
    values.update(changes)
    return Job(**values)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_job_line_in_json_carries_the_job_id_queue_type_attempt_and_tenant() -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({}, log_format="json"), stream=stream)
    job = _job()
    job_logger(job).info("charged %s", "pi_123")
    log_failure(job, "ConnectionError: smtp down", last=False)  # the worker's own per-job warning

    mine, workers = _lines(stream)
    for line in (mine, workers):
        assert {key: line[key] for key in JOB_FIELDS} == {
            "job_id": str(job.id),
            "queue": "communication",
            "job_type": "send-email",
            "attempt": 2,
            "tenant_id": str(job.tenant_id),
        }
        assert line["logger"] == "jobkeeper.job"
        datetime.fromisoformat(line["timestamp"])
    assert mine["level"] == "info"
    assert mine["message"].endswith("charged pi_123")
    assert workers["level"] == "warning"
    assert workers["message"].endswith("failed, will retry: ConnectionError: smtp down")


def test_library_records_and_structlog_loggers_share_the_json_output_with_tracebacks() -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({}, log_format="json", log_level="INFO"), stream=stream)
    logging.getLogger("uvicorn.error").debug("hidden below the level")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("psycopg.pool").exception("pool trouble")
    structlog.get_logger("mine").warning("native", answer=42)

    library, native = _lines(stream)
    assert library["logger"] == "psycopg.pool"
    assert library["level"] == "error"
    assert "ValueError: boom" in library["exception"]
    assert native == {**native, "message": "native", "answer": 42, "level": "warning", "logger": "mine"}


def test_console_output_when_forced_even_without_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({"JOBKEEPER_LOG_FORMAT": "console"}), stream=stream)
    job_logger(_job(queue="money", type="payment-process")).warning("declined")
    text = stream.getvalue()
    assert not text.lstrip().startswith("{")
    assert "warning" in text
    assert "declined" in text
    assert "job_type=payment-process" in text
    assert "\x1b[" not in text  # no colour codes into a pipe


def test_auto_is_console_on_a_terminal_and_json_elsewhere_and_json_can_be_forced() -> None:
    assert resolve_format("auto", _Terminal()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    terminal = _Terminal()
    configure_logging(Settings.from_env({"JOBKEEPER_LOG_FORMAT": "json"}), stream=terminal)
    logging.getLogger("jobkeeper").warning("forced")
    assert json.loads(terminal.getvalue())["message"] == "forced"


def test_the_log_file_is_json_and_rotates_at_its_size_keeping_the_configured_backups(tmp_path: Path) -> None:
    path = tmp_path / "jobkeeper.log"
    settings = Settings.from_env(
        {
            "JOBKEEPER_LOG_FILE": str(path),
            "JOBKEEPER_LOG_FILE_MAX_BYTES": "2000",
            "JOBKEEPER_LOG_FILE_BACKUPS": "2",
            "JOBKEEPER_LOG_FORMAT": "console",
        }
    )
    configure_logging(settings, stream=io.StringIO())
    log = logging.getLogger("jobkeeper.test")
    for n in range(100):
        log.warning("line %03d %s", n, "x" * 50)

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["jobkeeper.log", "jobkeeper.log.1", "jobkeeper.log.2"]
    for name in files:
        assert 0 < (tmp_path / name).stat().st_size <= 2000
        for line in (tmp_path / name).read_text(encoding="utf-8").splitlines():
            assert json.loads(line)["logger"] == "jobkeeper.test"
    newest = (tmp_path / "jobkeeper.log").read_text(encoding="utf-8").splitlines()
    assert json.loads(newest[-1])["message"].startswith("line 099")


def test_configuring_again_replaces_its_own_handlers_only() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(Settings.from_env({}, log_format="json"), stream=first)
    configure_logging(Settings.from_env({}, log_format="json"), stream=second)
    logging.getLogger("jobkeeper").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
    assert other in logging.getLogger().handlers
    logging.getLogger().removeHandler(other)


def test_uvicorn_colour_copies_of_messages_stay_out_of_json() -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({}, log_format="json"), stream=stream)
    logging.getLogger("uvicorn.error").warning("started", extra={"color_message": "\x1b[1mstarted\x1b[0m"})
    (line,) = _lines(stream)
    assert line["message"] == "started"
    assert "color_message" not in line


def test_each_child_of_up_gets_its_own_log_file() -> None:
    env = {"JOBKEEPER_LOG_FILE": "/var/log/jobkeeper/jobkeeper.log"}
    assert (
        _own_log_file(dict(env), "worker 2")["JOBKEEPER_LOG_FILE"]
        == "/var/log/jobkeeper/jobkeeper.worker-2.log"
    )
    assert _own_log_file(dict(env), "api")["JOBKEEPER_LOG_FILE"] == "/var/log/jobkeeper/jobkeeper.api.log"
    assert "JOBKEEPER_LOG_FILE" not in _own_log_file({}, "api")
