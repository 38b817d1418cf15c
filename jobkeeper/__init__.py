"""jobkeeper: a durable, fast, multi-tenant job queue on PostgreSQL."""

from jobkeeper.client import Client, SyncClient
from jobkeeper.config import Settings
from jobkeeper.errors import (
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidJobError,
    JobkeeperError,
    MigrationError,
    PayloadTooLargeError,
    UnknownQueueError,
    UnknownTenantError,
)
from jobkeeper.types import DEV_TENANT_ID, Job, JobStatus, Queue, Tier

__version__ = "0.1.0"

__all__ = [
    "DEV_TENANT_ID",
    "Client",
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "InvalidJobError",
    "Job",
    "JobStatus",
    "JobkeeperError",
    "MigrationError",
    "PayloadTooLargeError",
    "Queue",
    "Settings",
    "SyncClient",
    "Tier",
    "UnknownQueueError",
    "UnknownTenantError",
    "__version__",
]
