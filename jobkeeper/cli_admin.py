"""Admin commands on the database: `jobkeeper schedules …` and `jobkeeper limits …`.

They act as the schema owner (all tenants) through the same named SQL as the API; `--json` prints
machine-readable output. Exit status: 0 done, 1 not found, 2 bad input or configuration, 3 database
unreachable (docs/cli.md).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from jobkeeper import cron
from jobkeeper.cli_common import emit_rows, load_settings
from jobkeeper.errors import InvalidJobError, UnknownJobTypeError
from jobkeeper.payloads import check_payload
from jobkeeper.store.queries import query


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    emit_rows(rows, as_json, columns)  # the same tables and JSON as every admin command


def _connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    # The settings' timeouts and TLS options (JOBKEEPER_DB_SSLMODE, …) apply here as everywhere.
    options = load_settings().connection_kwargs()
    return psycopg.connect(url, autocommit=True, row_factory=dict_row, **options)


def list_schedules(url: str, tenant: uuid.UUID | None, as_json: bool) -> None:
    params = {
        "ids": None,
        "tenant_id": tenant,
        "active": None,
        "queue": None,
        "job_type": None,
        "after_name": None,
        "after_id": None,
        "limit": 10_000,
    }
    with _connect(url) as conn:
        rows = conn.execute(query("api_list_schedules"), params).fetchall()
    _emit(
        rows,
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
    params = options | {
        "payload": json.dumps(payload),
        "active": True,
        "next_run_at": cron.next_fire(options["cron"], options["timezone"], now),
        "max_schedules": cap,
    }
    with _connect(url) as conn:
        if not load_settings().allow_unknown_types:
            known = [row["name"] for row in conn.execute(query("load_job_types"))]
            if options["job_type"] not in known:
                raise click.UsageError(str(UnknownJobTypeError(options["job_type"], known)))
        try:
            with conn.transaction():
                conn.execute(query("lock_tenant_schedules"), {"tenant_id": options["tenant_id"]})
                row = conn.execute(query("api_insert_schedule"), params).fetchone()
        except psycopg.errors.UniqueViolation:
            raise click.UsageError(f"a schedule named {options['name']!r} exists already") from None
        except psycopg.errors.ForeignKeyViolation as exc:
            raise click.UsageError(f"unknown tenant or queue: {exc.diag.message_detail}") from None
    if row is None:
        raise click.UsageError(
            f"tenant {options['tenant_id']} has {cap} schedules, the most allowed "
            "(JOBKEEPER_SCHEDULES_PER_TENANT); delete one first"
        )
    _emit([row], as_json, ["id", "name", "cron", "timezone", "next_run_at"])


def set_schedule_active(url: str, tenant: uuid.UUID, ref: str, active: bool, as_json: bool) -> None:
    with _connect(url) as conn:
        rows = conn.execute(
            query("cli_set_schedule_active"), {"tenant_id": tenant, "ref": ref, "active": active}
        ).fetchall()
    if not rows:
        raise click.ClickException(f"no schedule {ref!r} in tenant {tenant}")
    _emit(rows, as_json, ["id", "name", "active"])


def delete_schedule(url: str, tenant: uuid.UUID, ref: str, as_json: bool) -> None:
    with _connect(url) as conn:
        rows = conn.execute(query("cli_delete_schedule"), {"tenant_id": tenant, "ref": ref}).fetchall()
    if not rows:
        raise click.ClickException(f"no schedule {ref!r} in tenant {tenant}")
    _emit(rows, as_json, ["id", "name"])


def list_limits(url: str, as_json: bool) -> None:
    with _connect(url) as conn:
        rows = conn.execute(query("api_metrics_limiters")).fetchall()
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
    with _connect(url) as conn:
        row = conn.execute(query("api_update_limiter"), {"name": name, **changes}).fetchone()
        if row is None:
            raise click.ClickException(f"no rate limiter named {name!r}")
        rows = [r for r in conn.execute(query("api_metrics_limiters")).fetchall() if r["name"] == name]
    _emit(rows, as_json, ["name", "rate_per_second", "burst", "max_concurrency", "tokens"])
