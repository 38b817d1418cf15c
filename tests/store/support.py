"""Rows the store's tests start from, written with plain statements."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from jobkeeper.types import DEV_TENANT_ID

TIERS = {"money": "durable", "communication": "fast", "background": "ephemeral"}


def insert_job(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "communication",
    job_type: str = "send-sms",
    status: str = "pending",
    finished_ago: float = 3600.0,
    tenant_id: uuid.UUID = DEV_TENANT_ID,
) -> uuid.UUID:
    """A job in `status`; a finished one finished `finished_ago` seconds ago."""
    row = conn.execute(
        "INSERT INTO jobkeeper.jobs (tenant_id, queue, type, payload, status, tier, max_attempts,"
        " started_at, completed_at)"
        " VALUES (%(tenant)s, %(queue)s, %(type)s, '{}', %(status)s, %(tier)s, 3,"
        " CASE WHEN %(finished)s THEN now() - make_interval(secs => %(ago)s + 1) END,"
        " CASE WHEN %(finished)s THEN now() - make_interval(secs => %(ago)s) END)"
        " RETURNING id",
        {
            "tenant": tenant_id,
            "queue": queue,
            "type": job_type,
            "status": status,
            "tier": TIERS[queue],
            "finished": status in ("completed", "failed", "cancelled"),
            "ago": finished_ago,
        },
    ).fetchone()
    assert row is not None
    job_id: uuid.UUID = row[0]
    return job_id


def insert_dead_letter(conn: psycopg.Connection[Any], *, queue: str = "communication") -> uuid.UUID:
    """A failed job and its dead letter; returns the dead letter's id."""
    job_id = insert_job(conn, queue=queue, status="failed")
    row = conn.execute(
        "INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,"
        " max_attempts, last_error) SELECT tenant_id, id, queue, type, payload, priority, 3, 3, 'Boom'"
        " FROM jobkeeper.jobs WHERE id = %s RETURNING id",
        (job_id,),
    ).fetchone()
    assert row is not None
    ident: uuid.UUID = row[0]
    return ident
