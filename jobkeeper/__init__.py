"""jobkeeper: a durable, fast, multi-tenant job queue on PostgreSQL."""

from jobkeeper.client import Client, SyncClient
from jobkeeper.config import Settings
from jobkeeper.errors import (
    Cancel,
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidJobError,
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
