"""`jobkeeper dlq list|show|replay|purge`: dead letters, through the filter and the named SQL of
`jobkeeper.deadletters` (the client's `dead_letters`)."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta
from typing import Any

import click

from jobkeeper.cli_common import (
    JSON_OPTION,
    BadInput,
    Failed,
    Instant,
    Session,
    confirm_or_refuse,
    emit_object,
    emit_rows,
    parse_uuid,
    resolve_instant,
    session,
    to_json,
    truncate,
)
from jobkeeper.deadletters import MAX_PAGE, DeadLetterFilter

REPLAY_MAX = 100_000


@click.group()
def dlq() -> None:
    """Dead letters (jobs that failed for good): list, show, replay, purge."""


def _filters(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--queue", default=None),
            click.option("--type", "job_type", default=None),
            click.option("--tenant", "tenant", type=click.UUID, default=None),
            click.option(
                "--since", type=Instant(), default=None, help="Failed at or after (ISO time or e.g. 2h ago)."
            ),
            click.option(
                "--until", type=Instant(), default=None, help="Failed before (ISO time or e.g. 30m ago)."
            ),
        ]
    ):
        function = option(function)
    return function


def _filter(
    s: Session,
    ids: list[uuid.UUID] | None,
    queue: str | None,
    job_type: str | None,
    tenant: uuid.UUID | None,
    since: datetime | timedelta | None,
    until: datetime | timedelta | None,
    replayed: bool | None = None,
) -> DeadLetterFilter:
    now = s.now()
    return DeadLetterFilter(
        ids=ids,
        queue=queue,
        type=job_type,
        tenant_id=tenant,
        since=resolve_instant(since, now),
        until=resolve_instant(until, now),
        replayed=replayed,
    )


def _selected(ids: tuple[str, ...], everything: bool, filtered: bool, verb: str) -> list[uuid.UUID] | None:
    if ids and (filtered or everything):
        raise BadInput(f"give dead-letter ids or filters to {verb}, not both")
    if not ids and not filtered and not everything:
        raise BadInput(f"name what to {verb}: dead-letter ids, filters (--queue, --type, …) or --all")
    return [parse_uuid(i, "dead-letter id") for i in ids] or None


@dlq.command("list")
@_filters
@click.option(
    "--replayed/--not-replayed", "replayed", default=None, help="Only replayed ones, or only the others."
)
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--after", metavar="ID", default=None, help="Continue after this dead letter (the last shown).")
@JSON_OPTION
def dlq_list(
    queue: str | None,
    job_type: str | None,
    tenant: uuid.UUID | None,
    since: datetime | timedelta | None,
    until: datetime | timedelta | None,
    replayed: bool | None,
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Dead letters, newest first. When a page is full, the option for the next one goes to stderr."""
    after_id = parse_uuid(after, "dead-letter id") if after else None
    with session() as s:
        where = _filter(s, None, queue, job_type, tenant, since, until, replayed)
        before: dict[str, Any] = {"before_failed_at": None, "before_id": None}
        if after_id is not None:
            anchor = s.row("list_dead_letters", _params(DeadLetterFilter(ids=[after_id]), 1))
            if anchor is None:
                raise Failed(f"no dead letter {after_id}")
            before = {"before_failed_at": anchor["failed_at"], "before_id": after_id}
        rows = s.rows("list_dead_letters", _params(where, limit) | before)
    for row in rows:
        row["error"] = truncate(row["last_error"], 50)
        row["replayed_as"] = row["replayed_job_id"]
    emit_rows(
        rows, as_json, ["id", "job_id", "queue", "type", "attempts", "failed_at", "replayed_as", "error"]
    )
    if len(rows) == limit:
        click.echo(f"more: add --after {rows[-1]['id']}", err=True)


def _params(where: DeadLetterFilter, limit: int) -> dict[str, Any]:
    return where.params() | {"limit": limit, "before_failed_at": None, "before_id": None}


@dlq.command("show")
@click.argument("dead_letter_id")
@JSON_OPTION
def dlq_show(dead_letter_id: str, as_json: bool) -> None:
    """One dead letter: its job, payload and every attempt's error."""
    ident = parse_uuid(dead_letter_id, "dead-letter id")
    with session() as s:
        row = s.row("list_dead_letters", _params(DeadLetterFilter(ids=[ident]), 1))
    if row is None:
        raise Failed(f"no dead letter {ident}")
    if as_json:
        click.echo(to_json(row))
        return
    fields = ["id", "job_id", "tenant_id", "queue", "type", "priority", "attempts", "max_attempts"]
    fields += ["idempotency_key", "failed_at", "replayed_at", "replayed_job_id", "last_error"]
    emit_object(row, False, fields)
    click.echo("payload:")
    click.echo("\n".join("  " + line for line in to_json(row["payload"]).splitlines()))
    click.echo(f"errors: {len(row['errors'])}")
    for error in row["errors"]:
        click.echo(
            f"  attempt {error.get('attempt', '?')} at {error.get('at', '?')}: "
            f"{error.get('type', 'Error')}: {error.get('message', '')}"
        )


@dlq.command("replay")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_filters
@click.option("--all", "everything", is_flag=True, help="Every dead letter not replayed yet.")
@click.option("--limit", type=click.IntRange(1, REPLAY_MAX), default=MAX_PAGE, show_default=True)
@JSON_OPTION
def dlq_replay(
    ids: tuple[str, ...],
    queue: str | None,
    job_type: str | None,
    tenant: uuid.UUID | None,
    since: datetime | timedelta | None,
    until: datetime | timedelta | None,
    everything: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Put dead letters back as fresh pending jobs (oldest first, at most --limit): the ones named by
    ID, or every one the filters match. Dead letters replayed already are skipped. Exit 1 when a named
    ID does not exist or was replayed already (the others are replayed)."""
    filtered = any(v is not None for v in (queue, job_type, tenant, since, until))
    chosen = _selected(ids, everything, filtered, "replay")
    with session() as s:
        where = _filter(s, chosen, queue, job_type, tenant, since, until)
        rows = s.rows("replay_dead_letters", where.params() | {"limit": limit})
        missing = _not_replayed(s, chosen, len(rows))
    emit_rows(rows, as_json, ["id", "queue", "type", "status", "priority", "max_attempts"])
    if missing:
        raise Failed("; ".join(missing))


def _on_terminal() -> bool:
    return sys.stdin.isatty()


def _not_replayed(s: Session, chosen: list[uuid.UUID] | None, replayed: int) -> list[str]:
    if not chosen or replayed == len(chosen):
        return []
    found = {
        row["id"]: row
        for row in s.rows("list_dead_letters", _params(DeadLetterFilter(ids=chosen), len(chosen)))
    }
    problems = []
    for ident in chosen:
        row = found.get(ident)
        if row is None:
            problems.append(f"no dead letter {ident}")
        elif row["replayed_at"] is not None:
            problems.append(f"dead letter {ident} was replayed already, as job {row['replayed_job_id']}")
    return problems


@dlq.command("purge")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_filters
@click.option(
    "--replayed/--not-replayed", "replayed", default=None, help="Only replayed ones, or only the others."
)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required when not on a terminal).")
@JSON_OPTION
def dlq_purge(
    ids: tuple[str, ...],
    queue: str | None,
    job_type: str | None,
    tenant: uuid.UUID | None,
    since: datetime | timedelta | None,
    until: datetime | timedelta | None,
    replayed: bool | None,
    everything: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete dead letters: the ones named by ID, or every one the filters match. The failed jobs
    themselves are kept. Asks first, showing how many, unless --yes."""
    filtered = any(v is not None for v in (queue, job_type, tenant, since, until, replayed))
    chosen = _selected(ids, everything, filtered, "purge")
    with session() as s:
        where = _filter(s, chosen, queue, job_type, tenant, since, until, replayed)
        if not yes:
            if not _on_terminal():
                raise BadInput("refusing to purge without --yes: stdin is not a terminal to confirm on")
            counted = s.row("dashboard_count_dead_letters", where.params())
            total = counted["total"] if counted else 0
            confirm_or_refuse(f"Delete {total} dead letters for good?", "nothing was purged")
        deleted = s.rows("purge_dead_letters", where.params())
    emit_rows([{"purged": len(deleted), "ids": [row["id"] for row in deleted]}], as_json, ["purged"])
    if chosen and len(deleted) < len(chosen):
        gone = sorted(set(chosen) - {row["id"] for row in deleted}, key=str)
        raise Failed("no dead letter " + ", ".join(str(g) for g in gone))
