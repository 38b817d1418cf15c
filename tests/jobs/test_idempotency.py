from __future__ import annotations

from typing import Any

import pytest

from jobkeeper.idempotency import Bucket, DerivedKey, content_key, derive


@pytest.mark.parametrize(
    ("job_type", "payload", "expected"),
    [
        (
            "payment-process",
            {"venueId": "v1", "userId": "u1", "eventId": "e1", "amount": 1200},
            DerivedKey("payment:v1:u1:e1:1200"),
        ),
        (
            "payment-process",
            {"venue_id": "v1", "user_id": "u1", "event_id": "e1", "amount": 1200, "order_id": "o9"},
            DerivedKey("payment:v1:u1:e1:1200:o9"),
        ),
        ("refund-process", {"transactionId": "tx_1", "amount": 5}, DerivedKey("refund:tx_1")),
        ("nft-mint", {"eventId": "e1", "seatId": "A-12"}, DerivedKey("nft:e1:A-12")),
        ("nft-mint", {"eventId": "e1", "ticketId": "t-7"}, DerivedKey("nft:e1:t-7")),
        ("payout-process", {"venueId": "v1", "period": "2026-11"}, DerivedKey("payout:v1:2026-11")),
        ("payout-process", {"venueId": "v1", "payoutId": "po_3"}, DerivedKey("payout:v1:po_3")),
        (
            "send-email",
            {"template": "receipt", "to": "Ann@Example.com"},
            DerivedKey("email:receipt:ann@example.com", Bucket.DAY),
        ),
        (
            "send-sms",
            {"to": "+15551234567", "template": "otp"},
            DerivedKey("sms:+15551234567:otp", Bucket.HOUR),
        ),
        (
            "analytics-track",
            {"eventType": "view", "timestamp": "2026-11-23T10:00:00Z"},
            DerivedKey("analytics:view:global:anonymous:2026-11-23T10:00:00Z"),
        ),
    ],
)
def test_each_rule(job_type: str, payload: dict[str, Any], expected: DerivedKey) -> None:
    assert derive(job_type, payload) == expected


def test_sms_has_its_own_rule_not_the_analytics_one() -> None:
    # The seed's switch fell through from send-sms into the analytics case.
    key = derive("send-sms", {"to": "+15550000000", "template": "t", "eventType": "x", "timestamp": "1"})
    assert key is not None
    assert key.key.startswith("sms:")


def test_money_types_always_get_a_key() -> None:
    partial = {"amount": 1200, "currency": "usd"}
    assert derive("payment-process", partial) == content_key("payment-process", partial)
    # Canonical JSON: key order does not matter, values do.
    assert content_key("x", {"a": 1, "b": 2}) == content_key("x", {"b": 2, "a": 1})
    assert content_key("x", {"a": 1}) != content_key("x", {"a": 2})
    assert content_key("x", {"a": 1}) != content_key("y", {"a": 1})


def test_other_types_get_a_key_only_when_a_rule_applies_or_asked() -> None:
    assert derive("send-email", {"to": "a@example.com"}) is None
    assert derive("resize-image", {"id": 1}) is None
    assert derive("resize-image", {"id": 1}, fallback=True) == content_key("resize-image", {"id": 1})


def test_long_keys_are_hashed_to_fit() -> None:
    key = derive("refund-process", {"transactionId": "t" * 500})
    assert key is not None
    assert len(key.key) <= 200
    assert key.key.startswith("refund:sha256:")
