"""Settings of maintenance: whether a worker competes for the leader lease, and where alerts go. The
email and SMS channels send through send-email's SMTP and send-sms's Twilio settings."""

from __future__ import annotations

from jobkeeper.environment import boolean, http_url, names, positive_seconds, section, setting, text


@section
class MaintenanceSettings:
    alert_webhook_url: str | None = setting("JOBKEEPER_ALERT_WEBHOOK_URL", http_url, default=None)
    """A Slack-compatible incoming webhook that receives every alert."""
    alert_email_to: tuple[str, ...] = setting("JOBKEEPER_ALERT_EMAIL_TO", names, default=())
    """Addresses that receive alerts by email (comma-separated), through the SMTP settings."""
    alert_sms_to: tuple[str, ...] = setting("JOBKEEPER_ALERT_SMS_TO", names, default=())
    """Numbers (E.164) that receive alerts by SMS, through the Twilio settings."""
    pagerduty_routing_key: str | None = setting(
        "JOBKEEPER_PAGERDUTY_ROUTING_KEY", text, default=None, secret=True
    )
    pagerduty_api_base: str = setting(
        "JOBKEEPER_PAGERDUTY_API_BASE", http_url, default="https://events.pagerduty.com"
    )
    alert_cooldown: float = setting("JOBKEEPER_ALERT_COOLDOWN", positive_seconds, default=900.0)
    """Seconds before an alert of the same rule and queue may repeat."""
    maintenance: bool = setting("JOBKEEPER_MAINTENANCE", boolean, default=True)
    """Whether this worker competes for the maintenance lease (rescuer, scheduler, pruning, alerts)."""
