"""`jobkeeper dead-letters list|show|replay|purge` (formerly `dlq`, still accepted): dead letters, through
the store's operations (`jobkeeper.store.dead_letters`, as the client's `dead_letters`)."""

from __future__ import annotations

import dataclasses
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
from jobkeeper.dead_letters import MAX_PAGE, REPLAY_MAX, DeadLetterFilter
from jobkeeper.types import DeadLetter


@click.group("dead-letters")
def dead_letters() -> None:
    """Dead letters (jobs that failed for good): list, show, replay, purge."""


def _row(letter: DeadLetter) -> dict[str, Any]:
    return dataclasses.asdict(letter)


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


@dead_letters.command("list")
@_filters
@click.option(
    "--replayed/--not-replayed", "replayed", default=None, help="Only replayed ones, or only the others."
)
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--after", metavar="ID", default=None, help="Continue after this dead letter (the last shown).")
@JSON_OPTION
def dead_letters_list(
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
    from jobkeeper.store import dead_letters as store
    from jobkeeper.types import Page

    after_id = parse_uuid(after, "dead-letter id") if after else None
    with session() as s:
        where = _filter(s, None, queue, job_type, tenant, since, until, replayed)
        before = None
        if after_id is not None:
            anchor = s.run(store.get(after_id))
            if anchor is None:
                raise Failed(f"no dead letter {after_id}")
            before = (anchor.failed_at, anchor.id)
        rows = [_row(letter) for letter in s.run(store.list(where, Page(before, limit)))]
    for row in rows:
        row["error"] = truncate(row["last_error"], 50)
        row["replayed_as"] = row["replayed_job_id"]
    emit_rows(
        rows, as_json, ["id", "job_id", "queue", "type", "attempts", "failed_at", "replayed_as", "error"]
    )
    if len(rows) == limit:
        click.echo(f"more: add --after {rows[-1]['id']}", err=True)


@dead_letters.command("show")
@click.argument("dead_letter_id")
@JSON_OPTION
def dead_letters_show(dead_letter_id: str, as_json: bool) -> None:
    """One dead letter: its job, payload and every attempt's error."""
    from jobkeeper.store import dead_letters as store

    ident = parse_uuid(dead_letter_id, "dead-letter id")
    with session() as s:
        letter = s.run(store.get(ident))
    if letter is None:
        raise Failed(f"no dead letter {ident}")
    row = _row(letter)
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


@dead_letters.command("replay")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_filters
@click.option("--all", "everything", is_flag=True, help="Every dead letter not replayed yet.")
@click.option("--limit", type=click.IntRange(1, REPLAY_MAX), default=MAX_PAGE, show_default=True)
@JSON_OPTION
def dead_letters_replay(
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
    from jobkeeper.store import dead_letters as store

    filtered = any(v is not None for v in (queue, job_type, tenant, since, until))
    chosen = _selected(ids, everything, filtered, "replay")
    with session() as s:
        where = _filter(s, chosen, queue, job_type, tenant, since, until)
        rows = [dataclasses.asdict(job) for job in s.run(store.replay(where, limit))]
        missing = _not_replayed(s, chosen, len(rows))
    emit_rows(rows, as_json, ["id", "queue", "type", "status", "priority", "max_attempts"])
    if missing:
        raise Failed("; ".join(missing))


def _on_terminal() -> bool:
    return sys.stdin.isatty()


def _not_replayed(s: Session, chosen: list[uuid.UUID] | None, replayed: int) -> list[str]:
    from jobkeeper.store import dead_letters as store
    from jobkeeper.types import Page

    if not chosen or replayed == len(chosen):
        return []
    letters = s.run(store.list(DeadLetterFilter(ids=chosen), Page(None, len(chosen))))
    found = {letter.id: letter for letter in letters}
    problems = []
    for ident in chosen:
        letter = found.get(ident)
        if letter is None:
            problems.append(f"no dead letter {ident}")
        elif letter.replayed_at is not None:
            problems.append(f"dead letter {ident} was replayed already, as job {letter.replayed_job_id}")
    return problems


@dead_letters.command("purge")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_filters
@click.option(
    "--replayed/--not-replayed", "replayed", default=None, help="Only replayed ones, or only the others."
)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required when not on a terminal).")
@JSON_OPTION
def dead_letters_purge(
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
    from jobkeeper.store import dead_letters as store

    filtered = any(v is not None for v in (queue, job_type, tenant, since, until, replayed))
    chosen = _selected(ids, everything, filtered, "purge")
    with session() as s:
        where = _filter(s, chosen, queue, job_type, tenant, since, until, replayed)
        if not yes:
            if not _on_terminal():
                raise BadInput("refusing to purge without --yes: stdin is not a terminal to confirm on")
            total = s.run(store.count(where))
            confirm_or_refuse(f"Delete {total} dead letters for good?", "nothing was purged")
        deleted = s.run(store.purge(where))
    emit_rows([{"purged": len(deleted), "ids": deleted}], as_json, ["purged"])
    if chosen and len(deleted) < len(chosen):
        gone = sorted(set(chosen) - set(deleted), key=str)
        raise Failed("no dead letter " + ", ".join(str(g) for g in gone))
