"""Retries, backoff timing (database clock), permanent errors, dead letters, snooze, Retry and Cancel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobkeeper import Cancel, Client, JobContext, PermanentError, Retry, Snooze
from jobkeeper.worker import BackoffPolicy, Registry
from tests.payloads import VALID
from tests.support import eventually
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import dead_letter, job_row, wait_for_row, wait_for_status

Conn = psycopg.AsyncConnection[Any]


def _at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


async def _wait_for_errors(db: Conn, job_id: Any, count: int) -> dict[str, Any]:
    row: dict[str, Any] = {}

    async def recorded() -> bool:
        nonlocal row
        row = await job_row(db, job_id)
        return len(row["errors"]) >= count and row["status"] != "processing"

    await eventually(recorded, what=f"{count} errors on job {job_id}")
    return row


async def test_a_failed_attempt_is_retried_after_the_queue_backoff_on_the_database_clock(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("send-email")
    async def flaky(payload: Any, ctx: JobContext) -> None:
        raise ConnectionError("smtp down")

    job = await client.enqueue("send-email", VALID["send-email"])  # communication: fixed 5 s, 3 attempts
    async with make_worker():
        row = await _wait_for_errors(db, job.id, 1)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["last_error"] == "ConnectionError: smtp down"
    (entry,) = row["errors"]
    assert entry["attempt"] == 1
    assert entry["type"] == "ConnectionError"
    assert entry["message"] == "smtp down"
    assert "raise ConnectionError" in entry["traceback"]
    # scheduled_at = the database's now() at the write + the backoff, exactly.
    assert row["scheduled_at"] - _at(entry) == timedelta(seconds=5)


async def test_exponential_backoff_with_jitter_uses_the_injected_random_source(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("payment-process")
    async def declined(payload: Any, ctx: JobContext) -> None:
        raise TimeoutError("gateway timeout")

    job = await client.enqueue(
        "payment-process", VALID["payment-process"]
    )  # money: exponential from 2 s, jitter
    async with make_worker(random=lambda: 1.0):  # the top of the jitter range: x1.25
        row = await _wait_for_errors(db, job.id, 1)
    assert row["scheduled_at"] - _at(row["errors"][0]) == timedelta(seconds=2.5)

    # Second attempt (run it now by moving scheduled_at back): 2 s * 2 * 0.75 with random 0.
    await db.execute("UPDATE jobkeeper.jobs SET scheduled_at = now() WHERE id = %s", (job.id,))
    async with make_worker(random=lambda: 0.0):
        row = await _wait_for_errors(db, job.id, 2)
    assert row["attempts"] == 2
    assert row["scheduled_at"] - _at(row["errors"][1]) == timedelta(seconds=3)


async def test_retry_signal_sets_the_time_and_counts_the_attempt(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("send-sms")
    async def busy(payload: Any, ctx: JobContext) -> None:
        raise Retry(after=30, reason="provider asked us to come back")

    job = await client.enqueue("send-sms", VALID["send-sms"])
    async with make_worker():
        row = await _wait_for_errors(db, job.id, 1)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["errors"][0]["type"] == "Retry"
    assert row["scheduled_at"] - _at(row["errors"][0]) == timedelta(seconds=30)


async def test_exhausted_attempts_fail_the_job_into_the_dead_letters_with_every_error(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    calls: list[int] = []

    @registry.task("refund-process", backoff=BackoffPolicy.fixed(0))
    async def refund(payload: Any, ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        raise RuntimeError(f"bank said no ({ctx.attempt})")

    refund_payload = VALID["refund-process"]
    job = await client.enqueue("refund-process", refund_payload, max_attempts=3, idempotency_key="refund-t1")
    async with make_worker():
        row = await wait_for_status(db, job.id, "failed")
    assert calls == [1, 2, 3]
    assert row["attempts"] == 3
    assert [e["message"] for e in row["errors"]] == [f"bank said no ({n})" for n in (1, 2, 3)]
    assert [e["attempt"] for e in row["errors"]] == [1, 2, 3]
    dead = await dead_letter(db, job.id)
    assert dead is not None
    assert dead["errors"] == row["errors"]
    assert (dead["attempts"], dead["max_attempts"]) == (3, 3)
    assert (dead["queue"], dead["type"], dead["payload"]) == ("money", "refund-process", refund_payload)
    assert dead["last_error"] == "RuntimeError: bank said no (3)"
    assert dead["idempotency_key"] == "refund-t1"


async def test_a_permanent_error_fails_at_once_and_keeps_earlier_errors(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    class CardDeclined(PermanentError):
        pass

    @registry.task("payment-process", backoff=0)
    async def pay(payload: Any, ctx: JobContext) -> None:
        if ctx.attempt == 1:
            raise ConnectionError("network blip")
        raise CardDeclined("card declined")

    job = await client.enqueue("payment-process", VALID["payment-process"])
    async with make_worker():
        row = await wait_for_status(db, job.id, "failed")
    assert row["attempts"] == 2
    assert row["max_attempts"] == 10
    assert [e["type"] for e in row["errors"]] == ["ConnectionError", "CardDeclined"]
    dead = await dead_letter(db, job.id)
    assert dead is not None
    assert len(dead["errors"]) == 2


async def test_snooze_puts_the_job_back_without_spending_an_attempt(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    attempts: list[int] = []

    @registry.task("send-push")
    async def push(payload: Any, ctx: JobContext) -> str:
        attempts.append(ctx.attempt)
        if len(attempts) == 1:
            raise Snooze(600)
        return "sent"

    job = await client.enqueue("send-push", VALID["send-push"])
    async with make_worker():
        row = await wait_for_row(
            db, job.id, lambda r: r["status"] == "pending" and r["started_at"] is not None, what="the snooze"
        )
        assert row["attempts"] == 0
        assert row["errors"] == []
        assert row["scheduled_at"] > row["started_at"] + timedelta(seconds=599)
        await db.execute("UPDATE jobkeeper.jobs SET scheduled_at = now() WHERE id = %s", (job.id,))
        row = await wait_for_status(db, job.id, "completed")
    assert attempts == [1, 1]
    assert row["attempts"] == 1
    assert row["result"] == "sent"


async def test_a_cancel_signal_ends_the_job_cancelled(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("send-email")
    async def unsubscribed(payload: Any, ctx: JobContext) -> None:
        raise Cancel("recipient unsubscribed")

    job = await client.enqueue("send-email", VALID["send-email"])
    async with make_worker():
        row = await wait_for_status(db, job.id, "cancelled")
    assert row["errors"][0]["message"] == "recipient unsubscribed"
    assert await dead_letter(db, job.id) is None


async def test_a_result_that_is_not_json_fails_the_attempt(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("analytics-track")
    async def track(payload: Any, ctx: JobContext) -> object:
        return object()

    job = await client.enqueue("analytics-track", VALID["analytics-track"], max_attempts=1)
    async with make_worker():
        row = await wait_for_status(db, job.id, "failed")
    assert row["errors"][0]["type"] == "TypeError"


def test_signals_reject_bad_delays_at_construction() -> None:
    with pytest.raises(ValueError, match="Retry"):
        Retry(after=-1)
    with pytest.raises(ValueError, match="Snooze"):
        Snooze(float("nan"))
