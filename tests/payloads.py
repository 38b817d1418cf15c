"""Valid and invalid payloads of the built-in job types, shared by the tests of every way in (API, clients,
CLI): one definition (`jobkeeper.payloads`) must give the same answer on each."""

from __future__ import annotations

from typing import Any

PHONE = "+14155552671"
WALLET = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"

VALID: dict[str, dict[str, Any]] = {
    "payment-process": {"amount": 1999, "currency": "USD", "venueId": "v1", "userId": "u1", "eventId": "e1"},
    "refund-process": {"transactionId": "pi_123", "amount": 500, "reason": "requested_by_customer"},
    "nft-mint": {"eventId": "e1", "seatId": "A-12", "wallet": WALLET},
    "payout-process": {"venueId": "v1", "period": "2026-11", "amount": 10_000, "currency": "eur"},
    "send-email": {"to": "ann@example.com", "template": "receipt", "data": {"order": "o-1"}},
    "send-sms": {"to": PHONE, "body": "Doors open at 7pm"},
    "send-push": {"token": "device-token", "title": "Doors open"},
    "analytics-track": {"eventType": "ticket.viewed", "timestamp": "2026-11-23T10:00:00Z", "userId": "u1"},
    "generate-report": {"hours": 48, "bucket": "day", "recipients": ["ops@example.com"]},
}

# (job type, data, the field named in the error)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("payment-process", VALID["payment-process"] | {"amount": 0}, "body.data.amount"),
    ("payment-process", VALID["payment-process"] | {"amount": 1_000_001}, "body.data.amount"),
    ("payment-process", VALID["payment-process"] | {"amount": 19.99}, "body.data.amount"),
    ("payment-process", VALID["payment-process"] | {"amount": "1999"}, "body.data.amount"),
    ("payment-process", VALID["payment-process"] | {"currency": "XYZ"}, "body.data.currency"),
    (
        "payment-process",
        {k: v for k, v in VALID["payment-process"].items() if k != "venueId"},
        "body.data.venueId",
    ),
    ("payment-process", VALID["payment-process"] | {"venue_id": "v1"}, "body.data.venue_id"),
    ("refund-process", {"amount": 500}, "body.data.transactionId"),
    ("refund-process", {"transactionId": "pi_1", "reason": "because"}, "body.data.reason"),
    ("nft-mint", {"eventId": "e1", "wallet": WALLET}, "body.data"),
    ("nft-mint", {"eventId": "e1", "seatId": "A-1", "wallet": "not-base58-0OIl"}, "body.data.wallet"),
    ("nft-mint", {"eventId": "e1", "seatId": "A-1"}, "body.data.wallet"),
    ("payout-process", {"venueId": "v1"}, "body.data"),
    ("send-email", {"to": "not-an-address", "template": "receipt"}, "body.data.to"),
    ("send-email", {"to": "ann@example.com"}, "body.data.template"),
    ("send-sms", {"to": "4155552671", "body": "hi"}, "body.data.to"),
    ("send-sms", {"to": "+19999999999", "body": "hi"}, "body.data.to"),
    ("send-sms", {"to": PHONE}, "body.data"),
    ("send-push", {"title": "no target"}, "body.data"),
    ("analytics-track", {"eventType": "x", "timestamp": "yesterday", "userId": "u"}, "body.data.timestamp"),
    ("analytics-track", {"timestamp": "2026-11-23T10:00:00Z", "userId": "u"}, "body.data.eventType"),
    ("analytics-track", {"eventType": "x", "timestamp": 1_700_000_000}, "body.data"),
    ("generate-report", {"format": "csv"}, "body.data.format"),
    ("generate-report", {"hours": "lots"}, "body.data.hours"),
    ("generate-report", {"from": "2026-11-01"}, "body.data.from"),
    ("generate-report", {"tenant": "acme"}, "body.data"),
]


def unique(job_type: str, n: int) -> dict[str, Any]:
    """A valid payload of a built-in type, different for each `n` in the fields its idempotency key is
    derived from: tests that enqueue many jobs of one built-in type get many jobs, not one deduplicated."""
    varied: dict[str, dict[str, Any]] = {
        "payment-process": {"orderId": f"o-{n}"},
        "refund-process": {"transactionId": f"pi_{n}"},
        "nft-mint": {"seatId": f"A-{n}"},
        "payout-process": {"venueId": f"v{n}"},
        "send-email": {"to": f"user{n}@example.com", "data": {"order": f"o-{n}"}},
        "send-sms": {"to": PHONE, "body": f"Doors open at 7pm ({n})"},
        "send-push": {"title": f"Doors open ({n})"},
        "analytics-track": {"userId": f"u{n}"},
        "generate-report": {"hours": n % 720 + 1},
    }
    return VALID[job_type] | varied[job_type]
