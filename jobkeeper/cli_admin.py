"""Admin commands on the database: `jobkeeper schedules …` and `jobkeeper limits …`.

They act as the schema owner (all tenants) through the same named SQL as the API; `--json` prints
machine-readable output. Exit status: 0 done, 1 not found, 2 bad input or configuration, 3 database
unreachable (docs/cli.md).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from jobkeeper import cron
from jobkeeper.cli_common import Session, emit_rows, load_settings
from jobkeeper.errors import ConflictError, InvalidJobError, UnknownJobTypeError, UnknownReferenceError
from jobkeeper.payloads import check_payload
from jobkeeper.store import limiters, schedules
from jobkeeper.store.queries import query
from jobkeeper.types import Limiter, Schedule


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    emit_rows(rows, as_json, columns)  # the same tables and JSON as every admin command


@contextmanager
def _connect(url: str) -> Iterator[Session]:
    # The settings' timeouts and TLS options (JOBKEEPER_DB_SSLMODE, …) apply here as everywhere.
    settings = load_settings()
    options = settings.connection_kwargs()
    with psycopg.connect(url, autocommit=True, row_factory=dict_row, **options) as conn:
        yield Session(conn=conn, url=url, settings=settings)


def _rows(items: list[Schedule] | list[Limiter]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(item) for item in items]


def list_schedules(url: str, tenant: uuid.UUID | None, as_json: bool) -> None:
    with _connect(url) as s:
        found = s.run(schedules.list(tenant_id=tenant, limit=10_000))
    _emit(
        _rows(found),
        as_json,
        ["name", "cron", "timezone", "job_type", "queue", "active", "next_run_at", "missed_runs"],
    )


def add_schedule(url: str, options: dict[str, Any], as_json: bool) -> None:
    settings = load_settings()
    now = datetime.now(UTC)
    try:
        cron.validate(options["cron"], options["timezone"])
        # The same minimum as the API's for tenant admins; an operator who needs faster lowers the setting.
        cron.check_interval(options["cron"], options["timezone"], now, settings.schedule_min_interval)
        payload = json.loads(options["payload"])
        if not isinstance(payload, dict):
            raise InvalidJobError("--data", "must be a JSON object")
        check_payload(options["job_type"], payload, "--data")
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--data is not JSON: {exc}") from None
    except RecursionError:
        raise click.UsageError("--data: JSON nested too deeply") from None
    except InvalidJobError as exc:
        raise click.UsageError(str(exc)) from None
    cap = settings.schedules_per_tenant
    values = options | {
        "payload": json.dumps(payload),
        "active": True,
        "next_run_at": cron.next_fire(options["cron"], options["timezone"], now),
    }
    with _connect(url) as s:
        if not settings.allow_unknown_types:
            known = [row["name"] for row in s.conn.execute(query("load_job_types"))]
            if options["job_type"] not in known:
                raise click.UsageError(str(UnknownJobTypeError(options["job_type"], known)))
        try:
            created = s.run(schedules.create(values, max_schedules=cap))
        except ConflictError:
            raise click.UsageError(f"a schedule named {options['name']!r} exists already") from None
        except UnknownReferenceError as exc:
            raise click.UsageError(f"unknown {exc.field}: {options.get(exc.field, '')}") from None
    if created is None:
        raise click.UsageError(
            f"tenant {options['tenant_id']} has {cap} schedules, the most allowed "
            "(JOBKEEPER_SCHEDULES_PER_TENANT); delete one first"
        )
    _emit(_rows([created]), as_json, ["id", "name", "cron", "timezone", "next_run_at"])


def set_schedule_active(url: str, tenant: uuid.UUID, ref: str, active: bool, as_json: bool) -> None:
    """Pause or resume with the API's meaning (`schedules.set_active`): a paused schedule has no next
    run; resumed, it fires from its next slot after now (slots missed while paused are not run)."""
    with _connect(url) as s:
        found = s.run(schedules.find(tenant, ref))
        changed = None if found is None else s.run(schedules.set_active(found.id, active))
    if changed is None:
        raise click.ClickException(f"no schedule {ref!r} in tenant {tenant}")
    _emit(_rows([changed]), as_json, ["id", "name", "active", "next_run_at"])


def delete_schedule(url: str, tenant: uuid.UUID, ref: str, as_json: bool) -> None:
    with _connect(url) as s:
        found = s.run(schedules.find(tenant, ref))
        deleted = found is not None and s.run(schedules.delete(found.id, tenant_id=tenant))
    if found is None or not deleted:
        raise click.ClickException(f"no schedule {ref!r} in tenant {tenant}")
    _emit([{"id": found.id, "name": found.name}], as_json, ["id", "name"])


def list_limits(url: str, as_json: bool) -> None:
    with _connect(url) as s:
        rows = _rows(s.run(limiters.list()))
    for row in rows:
        row["tokens"] = round(row["tokens"], 2)
    _emit(
        rows,
        as_json,
        [
            "name",
            "rate_per_second",
            "burst",
            "max_concurrency",
            "limiter_group",
            "tokens",
            "in_flight",
            "waits",
        ],
    )


def set_limit(url: str, name: str, changes: dict[str, Any], as_json: bool) -> None:
    with _connect(url) as s:
        updated = s.run(limiters.update(name, **changes))
    if updated is None:
        raise click.ClickException(f"no rate limiter named {name!r}")
    _emit(_rows([updated]), as_json, ["name", "rate_per_second", "burst", "max_concurrency", "tokens"])
