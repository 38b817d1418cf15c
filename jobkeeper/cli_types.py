"""`jobkeeper types list|declare`: the job types enqueue accepts (built in, registered by a worker that has
started, or declared here)."""

from __future__ import annotations

from typing import Any

import click

from jobkeeper.cli_common import JSON_OPTION, BadInput, emit_rows, session

_COLUMNS = ["name", "queue", "max_attempts", "priority", "builtin"]


def _row(row: dict[str, Any], builtin: frozenset[str]) -> dict[str, Any]:
    return {name: row.get(name) for name in _COLUMNS} | {"builtin": row["name"] in builtin}


@click.group()
def types() -> None:
    """Job types: list the known ones, declare a new one."""


@types.command("list")
@JSON_OPTION
def types_list(as_json: bool) -> None:
    """Every known job type with its default queue, attempts and priority (empty: the queue's)."""
    from jobkeeper.payloads import BUILTIN_TYPES

    with session() as s:
        rows = s.rows("load_job_types")
    emit_rows([_row(row, BUILTIN_TYPES) for row in rows], as_json, _COLUMNS)


@types.command("declare")
@click.argument("name")
@click.option("--queue", default=None, help="Its default queue (a shared one); new types: the default queue.")
@JSON_OPTION
def types_declare(name: str, queue: str | None, as_json: bool) -> None:
    """Make job type NAME known, so jobs of it can be enqueued before a worker handling it has started.
    Declaring a known type again with --queue changes its default queue."""
    from jobkeeper.catalog import catalog_from_rows
    from jobkeeper.enqueue import check_declaration
    from jobkeeper.errors import InvalidJobError
    from jobkeeper.payloads import BUILTIN_TYPES

    with session() as s:
        catalog = catalog_from_rows(s.rows("load_queues"), s.rows("load_job_types"))
        try:
            name = check_declaration(name, queue, catalog)
        except InvalidJobError as exc:
            raise BadInput(str(exc)) from None
        row = s.row(
            "declare_job_type", {"name": name, "queue": queue, "default_queue": s.settings.default_queue}
        )
    assert row is not None
    emit_rows([_row(row, BUILTIN_TYPES)], as_json, _COLUMNS)
