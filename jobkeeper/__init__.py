"""jobkeeper: a durable, fast, multi-tenant job queue on PostgreSQL.

The names below are imported on first use (PEP 562), so that `import jobkeeper.cli` for `jobkeeper --help`
does not pay for psycopg, the worker and the client it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobkeeper.client import Client, SyncClient
    from jobkeeper.config import Settings
    from jobkeeper.errors import (
        Cancel,
        ConfigError,
        DatabaseError,
        DatabaseUnavailableError,
        InvalidJobError,
        JobFinishedError,
        JobkeeperError,
        MigrationError,
        PayloadTooLargeError,
        PermanentError,
        Retry,
        Snooze,
        UnknownQueueError,
        UnknownTenantError,
    )
    from jobkeeper.types import DEV_TENANT_ID, Job, JobStatus, Queue, Tier
    from jobkeeper.worker import BackoffPolicy, JobContext, Worker, task

_LAZY = {
    "Client": "jobkeeper.client",
    "SyncClient": "jobkeeper.client",
    "Settings": "jobkeeper.config",
    **dict.fromkeys(
        (
            "Cancel",
            "ConfigError",
            "DatabaseError",
            "DatabaseUnavailableError",
            "InvalidJobError",
            "JobFinishedError",
            "JobkeeperError",
            "MigrationError",
            "PayloadTooLargeError",
            "PermanentError",
            "Retry",
            "Snooze",
            "UnknownQueueError",
            "UnknownTenantError",
        ),
        "jobkeeper.errors",
    ),
    **dict.fromkeys(("DEV_TENANT_ID", "Job", "JobStatus", "Queue", "Tier"), "jobkeeper.types"),
    **dict.fromkeys(("BackoffPolicy", "JobContext", "Worker", "task"), "jobkeeper.worker"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobkeeper' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "DEV_TENANT_ID",
    "BackoffPolicy",
    "Cancel",
    "Client",
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "InvalidJobError",
    "Job",
    "JobContext",
    "JobFinishedError",
    "JobStatus",
    "JobkeeperError",
    "MigrationError",
    "PayloadTooLargeError",
    "PermanentError",
    "Queue",
    "Retry",
    "Settings",
    "Snooze",
    "SyncClient",
    "Tier",
    "UnknownQueueError",
    "UnknownTenantError",
    "Worker",
    "__version__",
    "task",
]
