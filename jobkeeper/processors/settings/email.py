"""Settings of send-email: its transport (SMTP or SendGrid), sender and templates. The alert channels
send their emails through the same SMTP settings."""

from __future__ import annotations

from pathlib import Path

from jobkeeper.environment import choice, directory, host, http_url, port, section, setting, text

EMAIL_TRANSPORTS = ("smtp", "sendgrid")
SMTP_SECURITY = ("starttls", "tls", "none")


@section
class EmailSettings:
    email_transport: str | None = setting("JOBKEEPER_EMAIL_TRANSPORT", choice(EMAIL_TRANSPORTS), default=None)
    """send-email: `smtp` or `sendgrid`; unset, the one whose settings are present."""
    email_from: str | None = setting("JOBKEEPER_EMAIL_FROM", text, default=None)
    """Sender of emails whose job names none, e.g. `Tickets <tickets@example.com>`."""
    email_templates_dir: Path | None = setting("JOBKEEPER_EMAIL_TEMPLATES_DIR", directory, default=None)
    """Your email templates, looked up before the built-in ones."""
    smtp_host: str | None = setting("JOBKEEPER_SMTP_HOST", host, default=None)
    smtp_port: int | None = setting("JOBKEEPER_SMTP_PORT", port, default=None)
    """Default: 587 with STARTTLS, 465 with TLS, 25 without."""
    smtp_username: str | None = setting("JOBKEEPER_SMTP_USERNAME", text, default=None)
    smtp_password: str | None = setting("JOBKEEPER_SMTP_PASSWORD", text, default=None, secret=True)
    smtp_security: str = setting("JOBKEEPER_SMTP_SECURITY", choice(SMTP_SECURITY), default="starttls")
    """`starttls` (upgrade after connecting), `tls` (implicit TLS) or `none` (local relays only)."""
    sendgrid_api_key: str | None = setting("JOBKEEPER_SENDGRID_API_KEY", text, default=None, secret=True)
    sendgrid_api_base: str = setting(
        "JOBKEEPER_SENDGRID_API_BASE", http_url, default="https://api.sendgrid.com"
    )
