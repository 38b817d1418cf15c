"""The store's one translation of psycopg errors into jobkeeper's error tree (jobkeeper/errors.py).

Only the drivers of `jobkeeper.store.run` call `translate`, once per failed operation. It decides by the
error's SQLSTATE (psycopg's error classes are those codes) and, for integrity errors, by the constraint's
name, never by the message's text, which changes with the server's version and `lc_messages`. The message
is kept for people: it goes into the new error's text, and the psycopg error stays its `__cause__`.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg

from jobkeeper.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidValueError,
    JobkeeperError,
    MigrationError,
    StatementTimeoutError,
    UnknownReferenceError,
)

# The public field each unique, foreign-key and check constraint of the schema is about, by constraint name
# (a partition's constraints carry its parent's names). tests/store/test_errors.py fails on a constraint of
# the migrated schema that is missing here, so a migration adding one must name its field.
CONSTRAINT_FIELDS: dict[str, str] = {
    # unique
    "dead_letter_jobs_tenant_id_job_id_key": "job_id",
    "idempotency_keys_tenant_id_key_key": "idempotency_key",
    "rate_limits_tenant_id_key_key": "key",
    "schedules_tenant_id_name_key": "name",
    "tenants_slug_key": "slug",
    # foreign keys
    "alert_history_queue_fkey": "queue",
    "alert_history_tenant_id_fkey": "tenant_id",
    "dead_letter_jobs_queue_fkey": "queue",
    "dead_letter_jobs_tenant_id_fkey": "tenant_id",
    "idempotency_keys_tenant_id_fkey": "tenant_id",
    "job_dependencies_tenant_id_fkey": "tenant_id",
    "job_types_limiter_fkey": "limiter",
    "job_types_queue_fkey": "queue",
    "jobs_queue_fkey": "queue",
    "jobs_tenant_id_fkey": "tenant_id",
    "queue_metrics_queue_fkey": "queue",
    "queue_metrics_tenant_id_fkey": "tenant_id",
    "queues_tenant_id_fkey": "tenant_id",
    "rate_limiters_limiter_group_fkey": "limiter_group",
    "rate_limiters_tenant_id_fkey": "tenant_id",
    "rate_limits_tenant_id_fkey": "tenant_id",
    "schedules_queue_fkey": "queue",
    "schedules_tenant_id_fkey": "tenant_id",
    # checks
    "alert_history_check": "acknowledged_by",
    "alert_history_rule_check": "rule",
    "alert_history_severity_check": "severity",
    "dead_letter_jobs_attempts_check": "attempts",
    "dead_letter_jobs_errors_check": "errors",
    "dead_letter_jobs_max_attempts_check": "max_attempts",
    "dead_letter_jobs_priority_check": "priority",
    "idempotency_keys_key_check": "idempotency_key",
    "job_dependencies_check": "depends_on",
    "job_types_idempotency_ttl_seconds_check": "idempotency_ttl_seconds",
    "job_types_max_attempts_check": "max_attempts",
    "job_types_name_check": "name",
    "job_types_priority_check": "priority",
    "job_types_timeout_seconds_check": "timeout_seconds",
    "jobs_attempts_check": "attempts",
    "jobs_errors_check": "errors",
    "jobs_idempotency_key_check": "idempotency_key",
    "jobs_max_attempts_check": "max_attempts",
    "jobs_priority_check": "priority",
    "jobs_retries_check": "retries",
    "jobs_status_check": "status",
    "jobs_tier_check": "tier",
    "jobs_timeout_seconds_check": "timeout_seconds",
    "jobs_type_check": "type",
    "leases_name_check": "name",
    "queue_metrics_completed_check": "completed",
    "queue_metrics_dead_check": "dead",
    "queue_metrics_failed_check": "failed",
    "queue_metrics_oldest_waiting_seconds_check": "oldest_waiting_seconds",
    "queue_metrics_running_check": "running",
    "queue_metrics_scheduled_check": "scheduled",
    "queue_metrics_throughput_per_minute_check": "throughput_per_minute",
    "queue_metrics_waiting_check": "waiting",
    "queues_backoff_base_seconds_check": "backoff_base_seconds",
    "queues_backoff_check": "backoff",
    "queues_check": "backoff_max_seconds",
    "queues_default_priority_check": "default_priority",
    "queues_max_attempts_check": "max_attempts",
    "queues_name_check": "name",
    "queues_tier_check": "tier",
    "queues_timeout_seconds_check": "timeout_seconds",
    "rate_limiters_burst_check": "burst",
    "rate_limiters_check": "limiter_group",
    "rate_limiters_in_flight_check": "in_flight",
    "rate_limiters_max_concurrency_check": "max_concurrency",
    "rate_limiters_name_check": "name",
    "rate_limiters_rate_per_second_check": "rate_per_second",
    "rate_limiters_tokens_check": "tokens",
    "rate_limiters_waits_check": "waits",
    "rate_limits_capacity_check": "capacity",
    "rate_limits_key_check": "key",
    "rate_limits_refill_per_second_check": "refill_per_second",
    "rate_limits_tokens_check": "tokens",
    "schedules_catch_up_window_seconds_check": "catch_up_window_seconds",
    "schedules_cron_check": "cron",
    "schedules_job_type_check": "job_type",
    "schedules_missed_policy_check": "missed_policy",
    "schedules_missed_runs_check": "missed_runs",
    "schedules_name_check": "name",
    "schedules_overlap_policy_check": "overlap_policy",
    "schedules_priority_check": "priority",
    "tenants_max_concurrency_check": "max_concurrency",
    "tenants_name_check": "name",
    "tenants_slug_check": "slug",
    "workers_concurrency_check": "concurrency",
    "workers_pid_check": "pid",
    "workers_running_check": "running",
}

NO_SCHEMA = "the database has no jobkeeper schema: run `jobkeeper db upgrade`"


def translate(exc: psycopg.Error) -> JobkeeperError:
    """The jobkeeper error for `exc`; the caller raises it `from exc`. `PoolTimeout` is an
    OperationalError, so an exhausted pool is an unavailable database too."""
    line = first_line(exc)
    constraint = exc.diag.constraint_name
    field = CONSTRAINT_FIELDS.get(constraint) if constraint else None
    # QueryCanceled is an OperationalError: test it first.
    if isinstance(exc, pg.QueryCanceled):
        return StatementTimeoutError(f"database statement cancelled: {line}")
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailableError(f"database unreachable: {line}")
    if isinstance(exc, pg.UndefinedTable | pg.InvalidSchemaName):
        return MigrationError(f"{NO_SCHEMA} ({line})")
    if isinstance(exc, pg.UniqueViolation):
        what = f"{field} already exists" if field else "this conflicts with an existing record"
        return ConflictError(field, f"{what}: {line}")
    if isinstance(exc, pg.ForeignKeyViolation):
        # No named query deletes a referenced row (tenants, queues, limiters), so the violation is always a
        # write that names a missing one.
        return UnknownReferenceError(field or "value", f"refers to a row that does not exist: {line}")
    if isinstance(exc, psycopg.DataError | pg.CheckViolation):
        return InvalidValueError(field, f"invalid value: {line}")
    return DatabaseError(f"database error: {line}")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
