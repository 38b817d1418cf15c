"""`jobkeeper workers list`: live workers as their heartbeats report them (the dashboard's query)."""

from __future__ import annotations

import dataclasses

import click

from jobkeeper.cli_common import JSON_OPTION, Duration, emit_rows, session


@click.group()
def workers() -> None:
    """Worker processes: list the live ones."""


@workers.command("list")
@click.option(
    "--max-age",
    type=Duration(),
    default=None,
    help="A worker is live when its last heartbeat is younger than this (default: "
    "JOBKEEPER_READY_WORKER_MAX_AGE, 60 s).",
)
@JSON_OPTION
def workers_list(max_age: float | None, as_json: bool) -> None:
    """Live workers: host and pid, the queues they serve (`*`: all), their load (jobs running of their
    concurrency), when they started and how long ago they last sent a heartbeat."""
    from jobkeeper.store import workers as store_workers  # psycopg loads when a command runs

    with session() as s:
        age = max_age if max_age is not None else s.settings.ready_worker_max_age
        live = s.run(store_workers.list_live(age))  # no tenant: an operator sees every name
        now = s.now()
    rows = [
        dataclasses.asdict(worker)
        | {"heartbeat_age_seconds": round((now - worker.heartbeat_at).total_seconds(), 1)}
        for worker in live
    ]
    emit_rows(
        rows,
        as_json,
        ["id", "hostname", "pid", "queues", "load", "started_at", "heartbeat"],
        lambda row: (
            row
            | {
                "queues": ",".join(row["queues"] or []) or "*",
                "load": f"{row['running']}/{row['concurrency']}",
                "heartbeat": f"{row['heartbeat_age_seconds']:.1f}s ago",
            }
        ),
    )
