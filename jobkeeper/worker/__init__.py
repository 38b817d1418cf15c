"""The worker runtime: `@task` handlers, the `Worker` that claims and runs them, and their context."""

from jobkeeper.worker.backoff import BackoffPolicy, backoff_delay
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.isolation import ProcessContext
from jobkeeper.worker.registry import Registry, TaskSpec, default_registry, task
from jobkeeper.worker.worker import Worker

__all__ = [
    "BackoffPolicy",
    "JobContext",
    "ProcessContext",
    "Registry",
    "TaskSpec",
    "Worker",
    "backoff_delay",
    "default_registry",
    "task",
]
