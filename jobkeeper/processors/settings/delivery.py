"""Settings every processor that calls a provider shares: its timeout, and the development outbox that
send-email, send-sms and send-push use instead of a provider (jobkeeper.processors.outbox)."""

from __future__ import annotations

from jobkeeper.environment import boolean, positive_seconds, section, setting


@section
class DeliverySettings:
    provider_timeout: float = setting("JOBKEEPER_PROVIDER_TIMEOUT", positive_seconds, default=15.0)
    """Seconds each SMTP, SendGrid, Twilio, push and analytics call may take before it counts as a
    network error (retried)."""
    dev_outbox: bool | None = setting("JOBKEEPER_DEV_OUTBOX", boolean, default=None)
    """Development only: send-email, send-sms and send-push without a provider store their message in the
    dashboard's Outbox, not delivered. Unset: off, except under `jobkeeper up` with the embedded database;
    `up` refuses it with DATABASE_URL set (jobkeeper.processors.outbox)."""
    dev_outbox_by_up: bool = setting("JOBKEEPER_DEV_OUTBOX_BY_UP", boolean, default=False)
    """Set by `jobkeeper up` for its children: its banner said the outbox is on, so they do not warn again."""
