"""Assembling a worker the way the commands run it: the user's handler modules, the built-in processors,
the maintenance leader, and a report of what is not configured."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError
from jobkeeper.maintenance.service import maintenance_service
from jobkeeper.worker import Worker
from jobkeeper.worker.registry import Registry, default_registry

log = logging.getLogger(__name__)


def import_handlers(modules: Sequence[str]) -> None:
    """Import the modules whose `@task` handlers to run (the current directory is importable, as with
    `python -m`, so `--import myapp.tasks` works from a checkout)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"cannot import handler module {module!r}: {exc}") from None


def prepare_registry(
    settings: Settings, modules: Sequence[str], *, builtins: bool = True, registry: Registry | None = None
) -> Registry:
    """The user's handlers first (they replace built-ins of the same name), then the built-in processors
    whose provider is configured. A built-in that is not configured is left out, so this worker does not
    claim its jobs: they wait for a worker that can run them (or until it is configured and the worker
    restarted) instead of failing permanently here. One warning line names them; details at debug level
    and in `jobkeeper doctor`.

    `settings.database_url` must be the database the worker uses, the embedded server's included (the
    report and cleanup processors read it): see `database.open_database`."""
    target = registry if registry is not None else default_registry
    import_handlers(modules)
    if builtins:
        from jobkeeper.processors import configuration_problems, outbox, register_builtins

        offered = Registry()
        register_builtins(offered, settings)
        # With the development outbox on, send-email/sms/push without a provider run (into the outbox).
        problems_by_type = outbox.announce(settings, configuration_problems(offered, settings))
        unconfigured = {
            job_type: problems for job_type, problems in problems_by_type.items() if job_type not in target
        }
        for spec in offered:
            if spec.name not in target and spec.name not in unconfigured:
                target.add(spec)
        if unconfigured:
            log.warning(
                "not running these built-in job types until their provider is configured (their jobs "
                "wait; `jobkeeper doctor` says what to set): %s",
                ", ".join(sorted(unconfigured)),
            )
        for job_type, problems in sorted(unconfigured.items()):
            log.debug("%s is not configured: %s", job_type, "; ".join(problems))
    if not any(True for _ in target):
        raise ConfigError(
            "no job handlers: pass --import MODULE (or set JOBKEEPER_IMPORTS), or enable built-ins"
        )
    return target


def build_worker(
    database_url: str,
    settings: Settings,
    registry: Registry,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    batch_size: int | None = None,
    maintenance: bool | None = None,
) -> Worker:
    run_maintenance = settings.maintenance if maintenance is None else maintenance
    services = [maintenance_service(settings)] if run_maintenance else []
    return Worker(
        database_url,
        settings=settings,
        registry=registry,
        queues=list(queues) if queues else None,
        concurrency=concurrency,
        batch_size=batch_size,
        services=services,
    )
