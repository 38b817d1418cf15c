"""`jobkeeper types list|declare`: the job types enqueue accepts (built in, registered by a worker that has
started, or declared here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from jobkeeper.cli_common import JSON_OPTION, BadInput, emit_rows, session

if TYPE_CHECKING:
    from jobkeeper.types import JobType

_COLUMNS = ["name", "queue", "max_attempts", "priority", "builtin"]


def _row(job_type: JobType, builtin: frozenset[str]) -> dict[str, Any]:
    return {
        "name": job_type.name,
        "queue": job_type.queue,
        "max_attempts": job_type.max_attempts,
        "priority": job_type.priority,
        "builtin": job_type.name in builtin,
    }


@click.group()
def types() -> None:
    """Job types: list the known ones, declare a new one."""


@types.command("list")
@JSON_OPTION
def types_list(as_json: bool) -> None:
    """Every known job type with its default queue, attempts and priority (empty: the queue's)."""
    from jobkeeper.payloads import BUILTIN_TYPES
    from jobkeeper.store import queues

    with session() as s:
        job_types = s.run(queues.list_job_types())
    emit_rows([_row(job_type, BUILTIN_TYPES) for job_type in job_types], as_json, _COLUMNS)


@types.command("declare")
@click.argument("name")
@click.option("--queue", default=None, help="Its default queue (a shared one); new types: the default queue.")
@JSON_OPTION
def types_declare(name: str, queue: str | None, as_json: bool) -> None:
    """Make job type NAME known, so jobs of it can be enqueued before a worker handling it has started.
    Declaring a known type again with --queue changes its default queue."""
    from jobkeeper.enqueue import check_declaration
    from jobkeeper.errors import InvalidJobError
    from jobkeeper.payloads import BUILTIN_TYPES
    from jobkeeper.store import queues

    with session() as s:
        catalog = s.run(queues.load_catalog())
        try:
            name = check_declaration(name, queue, catalog)
        except InvalidJobError as exc:
            raise BadInput(str(exc)) from None
        declared = s.run(queues.declare_job_type(name, queue, default_queue=s.settings.default_queue))
    emit_rows([_row(declared.job_type, BUILTIN_TYPES)], as_json, _COLUMNS)
