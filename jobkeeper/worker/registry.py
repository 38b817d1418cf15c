"""Handler registration: `@task("send-email", queue="communication", ...)` and the registries it fills.

A handler is `handler(payload, ctx)`, async or sync; it returns a JSON-serialisable result. `@task` returns
the function unchanged, so it stays callable (and importable by name, which process isolation relies on).
A worker runs the handlers of one registry: the default global one unless it is given another.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from jobkeeper.errors import ConfigError
from jobkeeper.worker.backoff import BackoffPolicy

Handler = Callable[[Any, Any], Any]
"""`handler(payload, ctx)`: ctx is a `JobContext` (a `ProcessContext` under process isolation)."""
H = TypeVar("H", bound=Handler)
Isolation = Literal["thread", "process"]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A registered handler and its per-type options (each None: the queue's policy applies)."""

    name: str
    handler: Handler
    is_async: bool
    queue: str | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    priority: int | None = None
    backoff: BackoffPolicy | None = None
    isolation: Isolation = "thread"
    """`process`: a sync handler runs in a child process that is killed on timeout or cancellation."""

    @property
    def import_path(self) -> tuple[str, str]:
        return self.handler.__module__, self.handler.__qualname__


def _is_async(handler: Handler) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class Registry:
    """Job type name → `TaskSpec`."""

    def __init__(self) -> None:
        self._specs: dict[str, TaskSpec] = {}

    def task(
        self,
        name: str,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        backoff: BackoffPolicy | float | None = None,
        isolation: Isolation = "thread",
    ) -> Callable[[H], H]:
        """Decorator registering `handler(payload, ctx)` for job type `name`.

        `backoff` is a `BackoffPolicy` or a number of seconds (fixed). `max_attempts`, `timeout` and
        `priority` are also written to `jobkeeper.job_types` when a worker starts, so that enqueue uses
        them as defaults for this type.
        """
        policy = BackoffPolicy.fixed(float(backoff)) if isinstance(backoff, int | float) else backoff
        _check_options(name, max_attempts, timeout, priority, isolation)

        def register(handler: H) -> H:
            spec = TaskSpec(
                name=name,
                handler=handler,
                is_async=_is_async(handler),
                queue=queue,
                max_attempts=max_attempts,
                timeout=timeout,
                priority=priority,
                backoff=policy,
                isolation=isolation,
            )
            self.add(spec)
            return handler

        return register

    def add(self, spec: TaskSpec) -> None:
        if spec.isolation == "process":
            if spec.is_async:
                raise ConfigError(f"task {spec.name!r}: isolation='process' needs a sync handler")
            if "<locals>" in spec.handler.__qualname__ or spec.handler.__module__ == "__main__":
                raise ConfigError(
                    f"task {spec.name!r}: isolation='process' needs a handler defined at module level "
                    "of an importable module (the child process imports it by name)"
                )
        existing = self._specs.get(spec.name)
        if existing is not None and existing.import_path != spec.import_path:
            module, qualname = existing.import_path
            raise ConfigError(f"job type {spec.name!r} already has a handler: {module}.{qualname}")
        self._specs[spec.name] = spec

    def get(self, name: str) -> TaskSpec | None:
        return self._specs.get(name)

    def __getitem__(self, name: str) -> TaskSpec:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)


def _check_options(
    name: str, max_attempts: int | None, timeout: float | None, priority: int | None, isolation: str
) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ConfigError(f"a task name must be a non-empty string of at most 200 characters, got {name!r}")
    if max_attempts is not None and not 1 <= max_attempts <= 1000:
        raise ConfigError(f"task {name!r}: max_attempts must be from 1 to 1000, got {max_attempts}")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"task {name!r}: timeout must be a number of seconds > 0, got {timeout!r}")
    if priority is not None and not 1 <= priority <= 10:
        raise ConfigError(f"task {name!r}: priority must be from 1 to 10, got {priority}")
    if isolation not in ("thread", "process"):
        raise ConfigError(f"task {name!r}: isolation must be 'thread' or 'process', got {isolation!r}")


default_registry = Registry()
"""The registry `@task` fills and a `Worker` uses unless it is given another one."""


def task(
    name: str,
    *,
    queue: str | None = None,
    max_attempts: int | None = None,
    timeout: float | None = None,
    priority: int | None = None,
    backoff: BackoffPolicy | float | None = None,
    isolation: Isolation = "thread",
    registry: Registry | None = None,
) -> Callable[[H], H]:
    """Register `handler(payload, ctx)` for job type `name` in `registry` (default: the global one)."""
    return (registry if registry is not None else default_registry).task(
        name,
        queue=queue,
        max_attempts=max_attempts,
        timeout=timeout,
        priority=priority,
        backoff=backoff,
        isolation=isolation,
    )
