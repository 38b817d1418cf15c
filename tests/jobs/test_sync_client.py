"""The sync client shares the async client's SQL; these tests check its own I/O paths."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper import JobStatus, SyncClient, UnknownTenantError
from tests.payloads import PHONE, VALID, unique


def test_enqueue_and_get(sync_client: SyncClient) -> None:
    job = sync_client.enqueue("send-sms", VALID["send-sms"] | {"to": PHONE}, priority=9)
    assert (job.queue, job.priority, job.status) == ("communication", 9, JobStatus.PENDING)
    assert sync_client.get_job(job.id) == job
    assert sync_client.get_job(uuid.uuid4()) is None


def test_enqueue_many_and_idempotency(sync_client: SyncClient) -> None:
    jobs = sync_client.enqueue_many(
        [
            {"type": "nft-mint", "payload": unique("nft-mint", n), "idempotency_key": f"seat-{n % 3}"}
            for n in range(6)
        ]
    )
    assert len({job.id for job in jobs}) == 3
    assert [job.deduplicated for job in jobs] == [False, False, False, True, True, True]
    sync_client.declare_type("x")
    assert len(sync_client.enqueue_many([{"type": "x"}] * 6000)) == 6000


def test_callers_transaction(sync_client: SyncClient, db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with conn.transaction(force_rollback=True):
            job = sync_client.enqueue("send-email", VALID["send-email"], conn=conn)
        assert sync_client.get_job(job.id) is None


def test_unknown_tenant(sync_client: SyncClient) -> None:
    with pytest.raises(UnknownTenantError):
        sync_client.enqueue("send-email", VALID["send-email"], tenant_id=uuid.uuid4())


def test_schedule(sync_client: SyncClient) -> None:
    job = sync_client.schedule("send-email", VALID["send-email"], 30)
    delay: Any = job.scheduled_at - job.created_at
    assert delay.total_seconds() == 30
