"""`jobkeeper queues list|pause|resume|clean`, through the store's queue operations."""

from __future__ import annotations

import dataclasses
import uuid

import click

from jobkeeper.cli_common import JSON_OPTION, TENANT_FILTER, Duration, Failed, Session, emit_rows, session
from jobkeeper.errors import UnknownQueueError
from jobkeeper.types import JobStatus

CLEAN_BATCH = 10_000
CLEANABLE = [JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value]


@click.group()
def queues() -> None:
    """Queues: list with counts, pause, resume, clean finished jobs."""


def _known(s: Session) -> list[str]:
    from jobkeeper.store import queues as store

    return [queue.name for queue in s.run(store.list_queues())]


def _unknown(s: Session, name: str) -> Failed:
    return Failed(UnknownQueueError(name, _known(s)).reason)


@queues.command("list")
@TENANT_FILTER
@JSON_OPTION
def queues_list(tenant: uuid.UUID | None, as_json: bool) -> None:
    """Every queue with its jobs counted by state, whether it is paused, the wait of its oldest ready
    job (seconds) and its dead letters not yet replayed."""
    from jobkeeper.store import queues as store

    with session() as s:
        rows = [dataclasses.asdict(stats) for stats in s.run(store.stats(tenant))]
    emit_rows(
        rows,
        as_json,
        [
            "name",
            "tier",
            "paused",
            "waiting",
            "scheduled",
            "processing",
            "completed",
            "failed",
            "cancelled",
            "awaiting_dependencies",
            "dead_letters",
            "oldest_wait",
        ],
        lambda row: row | {"oldest_wait": _seconds(row["oldest_waiting_seconds"])},
    )


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}s"


def _set_paused(name: str, paused: bool, as_json: bool) -> None:
    from jobkeeper.store import queues as store

    with session() as s:
        queue = s.run(store.set_paused(name, paused))
        if queue is None:
            raise _unknown(s, name)
    emit_rows([dataclasses.asdict(queue)], as_json, ["name", "tier", "paused"])


@queues.command("pause")
@click.argument("name")
@JSON_OPTION
def queues_pause(name: str, as_json: bool) -> None:
    """Stop workers claiming from queue NAME. Running jobs finish; enqueueing still works."""
    _set_paused(name, True, as_json)


@queues.command("resume")
@click.argument("name")
@JSON_OPTION
def queues_resume(name: str, as_json: bool) -> None:
    """Let workers claim from queue NAME again."""
    _set_paused(name, False, as_json)


@queues.command("clean")
@click.argument("name")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(CLEANABLE),
    help="Finished state to delete (repeatable; default: completed).",
)
@click.option(
    "--older-than",
    type=Duration(),
    default=0.0,
    help="Only jobs that finished longer ago than this (e.g. 7d; default: any).",
)
@click.option("--tenant", "tenant", type=click.UUID, default=None, help="Only this tenant's jobs.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Delete at most this many.")
@JSON_OPTION
def queues_clean(
    name: str,
    statuses: tuple[str, ...],
    older_than: float,
    tenant: uuid.UUID | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Delete finished jobs of queue NAME, in batches of 10,000 (each its own transaction). Jobs whose
    idempotency key is still alive are kept until it expires (deleting them would let a duplicate
    payment through); dead letters are kept."""
    from jobkeeper.store import queues as store

    chosen = sorted(set(statuses) or {JobStatus.COMPLETED.value})
    deleted = 0
    with session() as s:
        known = _known(s)
        if name not in known:
            raise Failed(UnknownQueueError(name, known).reason)
        while limit is None or deleted < limit:
            batch = CLEAN_BATCH if limit is None else min(CLEAN_BATCH, limit - deleted)
            count = s.run(store.clean(name, chosen, grace=older_than, tenant_id=tenant, limit=batch))
            deleted += count
            if count < batch:
                break
    emit_rows(
        [{"queue": name, "statuses": chosen, "deleted": deleted}], as_json, ["queue", "statuses", "deleted"]
    )
