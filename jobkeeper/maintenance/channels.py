"""Alert channels: a Slack-compatible webhook, email over SMTP, SMS through Twilio, PagerDuty Events v2."""

from __future__ import annotations

from dataclasses import dataclass

from jobkeeper.maintenance.alerts import Alert
from jobkeeper.providers import pagerduty, smtp, twilio, webhook

ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def _title(alert: Alert) -> str:
    return f"[{alert.severity.upper()}] jobkeeper {alert.rule}" + (
        f" on {alert.queue}" if alert.queue else ""
    )


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    name: str = "webhook"

    async def send(self, alert: Alert) -> None:
        text = f"{ICONS.get(alert.severity, '')} {_title(alert)}: {alert.message}".strip()
        await webhook.post_json(
            self.url,
            {
                "text": text,
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": _title(alert)[:150]}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": alert.message}},
                    {
                        "type": "context",
                        "elements": [
                            {"type": "mrkdwn", "text": f"alert {alert.id} at {alert.created_at.isoformat()}"}
                        ],
                    },
                ],
            },
        )


@dataclass(frozen=True, slots=True)
class EmailChannel:
    config: smtp.SmtpConfig
    to: tuple[str, ...]
    name: str = "email"

    async def send(self, alert: Alert) -> None:
        body = (
            f"{alert.message}\n\nRule: {alert.rule}\nQueue: {alert.queue or '-'}\n"
            f"At: {alert.created_at.isoformat()}\n"
        )
        await smtp.send(self.config, smtp.build_message(self.config, list(self.to), _title(alert), body))


@dataclass(frozen=True, slots=True)
class SmsChannel:
    config: twilio.TwilioConfig
    to: tuple[str, ...]
    name: str = "sms"

    async def send(self, alert: Alert) -> None:
        for number in self.to:
            await twilio.send_sms(self.config, number, f"{_title(alert)}: {alert.message}"[:1500])


@dataclass(frozen=True, slots=True)
class PagerDutyChannel:
    config: pagerduty.PagerDutyConfig
    source: str = "jobkeeper"
    name: str = "pagerduty"

    async def send(self, alert: Alert) -> None:
        await pagerduty.trigger(
            self.config,
            summary=f"{_title(alert)}: {alert.message}",
            severity=alert.severity,
            dedup_key=f"jobkeeper:{alert.rule}:{alert.queue or '-'}",
            source=self.source,
            details={"alert_id": str(alert.id), **alert.details},
        )
