"""The built-in job processors: real handlers for the job types of the default queues (docs/processors.md).

Each processor is a package: `payload` declares the models of its job types' payloads (collected by
`jobkeeper.payloads`, which every way in applies), `processor` runs the jobs. A processor module
registers its handlers with `register(registry)`. They are ordinary `@task` registrations: a user's own
handler of the same name replaces a built-in (register yours first; `register` leaves a type that already
has a handler alone). A processor module may also offer `problems(settings)`, returning, per job type it
handles, what is missing or wrong in its provider's configuration; `configuration_problems` collects
those for the built-ins a registry actually runs, so a worker can report them at start.

Their settings live in the light `processors.settings` package. The processor modules are imported when
registering, not with this package: validating a payload imports `jobkeeper.processors.<name>.payload`
and must not load Stripe, Solana or the push libraries.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobkeeper.config import Settings
    from jobkeeper.worker.registry import Registry

BUILTINS = ("payments", "nft", "email", "sms", "push", "analytics", "cleanup", "reports")


def builtin_modules() -> tuple[ModuleType, ...]:
    """The processor module of each built-in, imported now."""
    return tuple(importlib.import_module(f"{__name__}.{name}.processor") for name in BUILTINS)


def register_builtins(registry: Registry, settings: Settings | None = None) -> None:
    """Register every built-in processor whose job type has no handler in `registry` yet.

    Without `settings`, each processor reads them from the environment when its first job runs.
    """
    for module in builtin_modules():
        module.register(registry, settings)


def configuration_problems(registry: Registry, settings: Settings) -> dict[str, list[str]]:
    """Job type → configuration problems, for each built-in handler registered in `registry`.

    A type replaced by the user's own handler is not checked; an empty result means every registered
    built-in has the settings it needs.
    """
    found: dict[str, list[str]] = {}
    for module in builtin_modules():
        check = getattr(module, "problems", None)
        if check is None:
            continue
        for job_type, problems in check(settings).items():
            spec = registry.get(job_type)
            if spec is not None and spec.handler.__module__ == module.__name__ and problems:
                found[job_type] = list(problems)
    return found
