"""Validation of enqueue requests: every bad input gets a typed error naming the field and the reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobkeeper import InvalidJobError, PayloadTooLargeError, Settings, UnknownQueueError
from jobkeeper.catalog import Catalog
from jobkeeper.enqueue import InsertBatch, encode_payload, parse_job_id, prepare
from jobkeeper.types import Backoff, JobType, Queue, Tier

SETTINGS = Settings.from_env({}, max_payload_bytes=1024)


def _queue(name: str, tier: Tier, attempts: int, priority: int) -> Queue:
    return Queue(name, None, tier, attempts, Backoff.FIXED, 5, 5, False, 60, priority, False)


CATALOG = Catalog(
    queues={
        "money": _queue("money", Tier.DURABLE, 10, 7),
        "communication": _queue("communication", Tier.FAST, 3, 5),
        "background": _queue("background", Tier.EPHEMERAL, 2, 5),
    },
    job_types={
        "payment-process": JobType("payment-process", "money", None, None, None, "stripe", 90 * 86400),
        "urgent-sms": JobType("urgent-sms", "communication", 5, None, 9, None, None),
        # Types of the tests' own, as a worker registers or `jobkeeper types declare` declares them.
        "x": JobType("x", "background", None, None, None, None, None),
        "y": JobType("y", "background", None, None, None, None, None),
    },
)


PAYMENT = {"amount": 100, "currency": "USD", "venueId": "v1", "userId": "u1", "eventId": "e1"}


def _one(**item: Any) -> InsertBatch:
    return prepare([item], CATALOG, SETTINGS)


def test_registered_type_goes_to_its_queue_with_queue_defaults() -> None:
    batch = _one(type="payment-process", payload=PAYMENT)
    assert batch.queues == ["money"]
    assert batch.tiers == ["durable"]
    assert batch.priorities == [7]
    assert batch.max_attempts == [10]
    assert batch.key_ttls == [90 * 86400]
    assert batch.payloads == ['{"amount":100,"currency":"USD","venueId":"v1","userId":"u1","eventId":"e1"}']


def test_type_overrides_beat_queue_defaults_and_job_options_beat_both() -> None:
    assert _one(type="urgent-sms").priorities == [9]
    assert _one(type="urgent-sms").max_attempts == [5]
    batch = _one(type="urgent-sms", priority=2, max_attempts=1)
    assert (batch.priorities, batch.max_attempts) == ([2], [1])


def test_unregistered_type_goes_to_the_default_queue_when_any_type_is_allowed() -> None:
    any_type = Settings.from_env({}, max_payload_bytes=1024, allow_unknown_types=True)
    batch = prepare([{"type": "resize-image"}], CATALOG, any_type)
    assert batch.queues == ["background"]
    assert batch.tiers == ["ephemeral"]
    assert batch.key_ttls == [SETTINGS.idempotency_ttl]


def test_explicit_queue_wins() -> None:
    assert _one(type="payment-process", payload=PAYMENT, queue="communication").queues == ["communication"]


def test_unknown_queue_names_the_known_ones_and_suggests() -> None:
    with pytest.raises(UnknownQueueError) as caught:
        _one(type="x", queue="mony")
    assert str(caught.value) == (
        "queue: unknown queue 'mony'; known queues: background, communication, money (did you mean 'money'?)"
    )


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ({"type": ""}, "type", "must be a non-empty string"),
        ({"type": 5}, "type", "must be a non-empty string"),
        ({"type": "x" * 201}, "type", "at most 200 characters"),
        ({"type": "x", "priority": 11}, "priority", "must be from 1 to 10, got 11"),
        ({"type": "x", "priority": 0}, "priority", "must be from 1 to 10, got 0"),
        ({"type": "x", "priority": True}, "priority", "must be a whole number from 1 to 10"),
        ({"type": "x", "priority": 5.5}, "priority", "must be a whole number from 1 to 10"),
        ({"type": "x", "max_attempts": 0}, "max_attempts", "must be from 1 to 1000, got 0"),
        ({"type": "x", "delay": -1}, "delay", "must be a finite number of seconds ≥ 0"),
        ({"type": "x", "delay": float("nan")}, "delay", "must be a finite number of seconds ≥ 0"),
        ({"type": "x", "delay": "5"}, "delay", "must be seconds (a number) or a timedelta"),
        ({"type": "x", "delay": timedelta(seconds=-3)}, "delay", "must be a finite number of seconds ≥ 0"),
        ({"type": "x", "run_at": datetime(2030, 1, 1)}, "run_at", "must be timezone-aware"),
        ({"type": "x", "run_at": "2030-01-01"}, "run_at", "must be a datetime"),
        ({"type": "x", "delay": 5, "run_at": datetime(2030, 1, 1, tzinfo=UTC)}, "run_at", "not both"),
        ({"type": "x", "idempotency_key": ""}, "idempotency_key", "1 to 255 characters"),
        ({"type": "x", "idempotency_key": "k" * 256}, "idempotency_key", "1 to 255 characters"),
        ({"type": "x", "tenant_id": "acme"}, "tenant_id", "must be a UUID"),
        ({"type": "x", "queue": 3}, "queue", "must be a queue name"),
        ({"type": "x", "payload": [1, 2]}, "payload", "must be a JSON object (a dict), got list"),
        ({"type": "x", "payload": {"at": datetime(2030, 1, 1)}}, "payload", "is not JSON-serialisable"),
        ({"type": "x", "payload": {"n": float("inf")}}, "payload", "NaN or Infinity"),
        ({"type": "x", "payload": {"s": "a\x00b"}}, "payload", "NUL character"),
        ({"type": "x", "payload": {"s": "\ud800"}}, "payload", "lone surrogate"),
        ({"type": "a\x00b"}, "type", "NUL character"),
        ({"type": "x", "idempotency_key": "k\x00"}, "idempotency_key", "NUL character"),
        ({"type": "x", "prority": 3}, "prority", "unknown option (did you mean 'priority'?)"),
        ({"type": "urgent-smss"}, "type", "unknown job type 'urgent-smss' (did you mean 'urgent-sms'?)"),
        ({"type": "payment-process", "payload": {"amount": 0}}, "payload.amount", "greater than 0"),
    ],
)
def test_invalid_input_names_the_field_and_reason(item: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidJobError) as caught:
        prepare([item], CATALOG, SETTINGS)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_circular_payload_is_rejected() -> None:
    payload: dict[str, Any] = {}
    payload["self"] = payload
    with pytest.raises(InvalidJobError, match="circular reference"):
        _one(type="x", payload=payload)


def test_oversized_payload_reports_size_and_limit() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        _one(type="x", payload={"blob": "é" * 600})
    assert caught.value.limit == 1024
    assert caught.value.size == len('{"blob":""}') + 1200  # bytes of UTF-8, not characters


def test_payload_strings_are_kept_verbatim() -> None:
    text = "'; DROP TABLE jobs; -- <script>alert(1)</script> SELECT"
    assert encode_payload({"note": text}, 10_000) == '{"note":"' + text + '"}'


def test_error_in_a_batch_names_the_item_index() -> None:
    with pytest.raises(InvalidJobError) as caught:
        prepare([{"type": "x"}, {"type": "x"}, {"type": "x", "priority": 99}], CATALOG, SETTINGS)
    assert caught.value.field == "jobs[2].priority"
    assert str(caught.value) == "jobs[2].priority: must be from 1 to 10, got 99"


def test_delay_accepts_seconds_and_timedeltas() -> None:
    assert _one(type="x", delay=timedelta(minutes=2)).delays == [120.0]
    assert _one(type="x", delay=3).delays == [3.0]


def test_fast_and_ephemeral_batches_commit_asynchronously_in_their_own_transaction() -> None:
    fast = prepare([{"type": "x", "queue": "communication"}, {"type": "y"}], CATALOG, SETTINGS)
    mixed = prepare(
        [{"type": "x", "queue": "communication"}, {"type": "payment-process", "payload": PAYMENT}],
        CATALOG,
        SETTINGS,
    )
    assert fast.params(own_transaction=True)["synchronous_commit"] == "off"
    assert mixed.params(own_transaction=True)["synchronous_commit"] == "on"
    assert fast.params(own_transaction=False)["synchronous_commit"] is None


def test_job_ids_are_parsed_or_rejected() -> None:
    ident = uuid.uuid4()
    assert parse_job_id(str(ident)) == ident
    with pytest.raises(InvalidJobError, match="must be a job id"):
        parse_job_id("nope")
