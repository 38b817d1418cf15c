"""Idempotency keys derived from a job's type and payload (docs/concepts.md#exactly-once-effects).

A key is unique per tenant within its type's TTL; a duplicate enqueue returns the original job. Rules:

| type | key | time bucket |
|---|---|---|
| payment-process | venue, user, event, amount (and order, when given) | — |
| refund-process | transaction | — |
| nft-mint | event, and seat or ticket | — |
| payout-process | venue, and period or payout | — |
| send-email | template, recipient | UTC day |
| send-sms | recipient, template | UTC hour |
| analytics-track | event type, venue, user, timestamp | — |

Each type has its own rule (docs/seed-findings.md lists the seeds' rules this fixes). Time buckets are filled
in by the database clock at insert time (`insert_jobs`), never by the caller's clock. Money types whose fields
are missing fall back to sha256(type + canonical JSON), so a money job always has a key; other types get that
fallback only when asked (`idempotency_key=True`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MONEY_TYPES = frozenset({"payment-process", "refund-process", "nft-mint", "payout-process"})
MAX_DERIVED_LENGTH = 200


class Bucket(StrEnum):
    DAY = "day"
    HOUR = "hour"


@dataclass(frozen=True, slots=True)
class DerivedKey:
    key: str
    bucket: Bucket | None = None


def _field(payload: Mapping[str, Any], *names: str) -> str | None:
    """The first present, non-empty value among `names` (camelCase and snake_case both accepted)."""
    for name in names:
        value = payload.get(name)
        if value is not None and value != "":
            return str(value)
    return None


def _rule(job_type: str, payload: Mapping[str, Any]) -> DerivedKey | None:
    def f(*names: str) -> str | None:
        return _field(payload, *names)

    if job_type == "payment-process":
        found = [f("venueId", "venue_id"), f("userId", "user_id"), f("eventId", "event_id"), f("amount")]
        parts = [part for part in found if part]
        if len(parts) == len(found):
            order = f("orderId", "order_id")
            return DerivedKey(":".join(["payment", *parts, *([order] if order else [])]))
    elif job_type == "refund-process":
        if transaction := f("transactionId", "transaction_id"):
            return DerivedKey(f"refund:{transaction}")
    elif job_type == "nft-mint":
        event, seat = f("eventId", "event_id"), f("seatId", "seat_id", "ticketId", "ticket_id")
        if event and seat:
            return DerivedKey(f"nft:{event}:{seat}")
    elif job_type == "payout-process":
        venue, period = f("venueId", "venue_id"), f("period", "payoutId", "payout_id")
        if venue and period:
            return DerivedKey(f"payout:{venue}:{period}")
    elif job_type == "send-email":
        template, to = f("template"), f("to")
        if template and to:
            return DerivedKey(f"email:{template}:{to.lower()}", Bucket.DAY)
    elif job_type == "send-sms":
        to, template = f("to"), f("template")
        if to and template:
            return DerivedKey(f"sms:{to}:{template}", Bucket.HOUR)
    elif job_type == "analytics-track":
        event_type, timestamp = f("eventType", "event_type"), f("timestamp")
        if event_type and timestamp:
            venue = f("venueId", "venue_id") or "global"
            user = f("userId", "user_id") or "anonymous"
            return DerivedKey(f"analytics:{event_type}:{venue}:{user}:{timestamp}")
    return None


def content_key(job_type: str, payload: Mapping[str, Any]) -> DerivedKey:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{job_type}\n{canonical}".encode()).hexdigest()
    return DerivedKey(f"{job_type}:sha256:{digest}")


def derive(job_type: str, payload: Mapping[str, Any], *, fallback: bool = False) -> DerivedKey | None:
    """The key for this job, or None when its type has no rule that applies (and no fallback)."""
    derived = _rule(job_type, payload)
    if derived is None and (fallback or job_type in MONEY_TYPES):
        derived = content_key(job_type, payload)
    if derived is not None and len(derived.key) > MAX_DERIVED_LENGTH:
        digest = hashlib.sha256(derived.key.encode()).hexdigest()
        derived = DerivedKey(f"{derived.key.split(':', 1)[0]}:sha256:{digest}", derived.bucket)
    return derived
