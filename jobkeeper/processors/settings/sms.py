"""Settings of send-sms: Twilio and the SMS templates. The alert channels send their SMS through the
same Twilio settings."""

from __future__ import annotations

from pathlib import Path

from jobkeeper.environment import directory, http_url, section, setting, text


@section
class SmsSettings:
    sms_templates_dir: Path | None = setting("JOBKEEPER_SMS_TEMPLATES_DIR", directory, default=None)
    """Your SMS templates (`NAME.txt`), looked up before the built-in ones."""
    twilio_account_sid: str | None = setting("JOBKEEPER_TWILIO_ACCOUNT_SID", text, default=None)
    twilio_auth_token: str | None = setting("JOBKEEPER_TWILIO_AUTH_TOKEN", text, default=None, secret=True)
    twilio_from: str | None = setting("JOBKEEPER_TWILIO_FROM", text, default=None)
    """Sending number in E.164 form (or an alphanumeric sender ID where the country allows it)."""
    twilio_api_base: str = setting("JOBKEEPER_TWILIO_API_BASE", http_url, default="https://api.twilio.com")
