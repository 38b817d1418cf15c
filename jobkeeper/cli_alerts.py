"""`jobkeeper alerts list|ack`: the alert history the maintenance leader writes, through the API's SQL."""

from __future__ import annotations

import dataclasses
import getpass
import socket
import uuid
from typing import Any

import click

from jobkeeper.cli_common import JSON_OPTION, Failed, emit_rows, parse_uuid, session, truncate

MAX_PAGE = 1000
SEVERITIES = ["info", "warning", "critical"]


@click.group()
def alerts() -> None:
    """Alerts raised by the maintenance leader: list, acknowledge."""


@alerts.command("list")
@click.option(
    "--unacknowledged/--acknowledged",
    "unacknowledged",
    default=None,
    help="Only alerts nobody acknowledged yet, or only acknowledged ones (default: both).",
)
@click.option("--severity", type=click.Choice(SEVERITIES), default=None)
@click.option("--queue", default=None)
@click.option("--rule", default=None, help="e.g. queue_depth, no_workers, money_dead_letter.")
@click.option("--tenant", "tenant", type=click.UUID, default=None, help="Only this tenant's alerts.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--after", metavar="ALERT_ID", default=None, help="Continue after this alert (the last shown).")
@JSON_OPTION
def alerts_list(
    unacknowledged: bool | None,
    severity: str | None,
    queue: str | None,
    rule: str | None,
    tenant: uuid.UUID | None,
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Alerts, newest first, with their deliveries and acknowledgement."""
    from jobkeeper.store import alerts as alert_ops  # the store loads psycopg: not on `--help`

    after_id = parse_uuid(after, "alert id") if after else None
    with session() as s:
        before = None
        if after_id is not None:
            # The anchor within the same filters, but acknowledged or not: it may have been since.
            anchor = s.run(
                alert_ops.list(
                    tenant_id=tenant, severity=severity, queue=queue, rule=rule, ids=[after_id], limit=1
                )
            )
            if not anchor:
                raise Failed(f"no alert {after_id}")
            before = (anchor[0].created_at, after_id)
        found = s.run(
            alert_ops.list(
                tenant_id=tenant,
                acknowledged=None if unacknowledged is None else not unacknowledged,
                severity=severity,
                queue=queue,
                rule=rule,
                before=before,
                limit=limit,
            )
        )
    rows = [dataclasses.asdict(alert) for alert in found]
    for row in rows:
        row["text"] = truncate(row["message"], 60)
        row["acknowledged"] = row["acknowledged_at"] is not None
    emit_rows(rows, as_json, ["id", "created_at", "severity", "rule", "queue", "acknowledged", "text"])
    if len(rows) == limit:
        click.echo(f"more: add --after {rows[-1]['id']}", err=True)


@alerts.command("ack")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--by", default=None, help="Who acknowledges (default: user@host).")
@JSON_OPTION
def alerts_ack(ids: tuple[str, ...], by: str | None, as_json: bool) -> None:
    """Acknowledge alerts. Acknowledging twice keeps the first acknowledgement. Exit 1 when an ID does
    not exist (the others are acknowledged)."""
    from jobkeeper.store import alerts as alert_ops  # the store loads psycopg: not on `--help`

    who = by or f"{getpass.getuser()}@{socket.gethostname()}"
    idents = [parse_uuid(i, "alert id") for i in ids]
    done: list[dict[str, Any]] = []
    missing: list[uuid.UUID] = []
    with session() as s:
        for ident in idents:
            acknowledged = s.run(alert_ops.acknowledge(ident, by=who))
            if acknowledged is None:
                missing.append(ident)
            else:
                done.append(dataclasses.asdict(acknowledged))
    emit_rows(done, as_json, ["id", "rule", "severity", "acknowledged_at", "acknowledged_by"])
    if missing:
        raise Failed("no alert " + ", ".join(str(m) for m in missing))
