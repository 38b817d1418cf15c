"""The maintenance leader as every worker runs it: which tasks, how often, with which channels."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError
from jobkeeper.lifecycle import Service
from jobkeeper.maintenance.alerts import AlertChecker, AlertConfig, Channel
from jobkeeper.maintenance.channels import EmailChannel, PagerDutyChannel, SmsChannel, WebhookChannel
from jobkeeper.maintenance.dependencies import DependencySweep
from jobkeeper.maintenance.leader import Leader, MaintenanceTask
from jobkeeper.maintenance.rescuer import Rescuer
from jobkeeper.maintenance.retention import DAY, Horizons, MetricsSnapshot, Pruner
from jobkeeper.maintenance.scheduler import Scheduler
from jobkeeper.providers.pagerduty import PagerDutyConfig
from jobkeeper.providers.smtp import SmtpConfig
from jobkeeper.providers.twilio import TwilioConfig
from jobkeeper.store.pool import AsyncPool

SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def alert_channels(settings: Settings) -> list[Channel]:
    """The channels whose settings are present (a channel half-configured is a start-up error)."""
    channels: list[Channel] = []
    if settings.alert_webhook_url:
        channels.append(WebhookChannel(settings.alert_webhook_url))
    if settings.alert_email_to:
        if not settings.smtp_host:
            raise ConfigError("JOBKEEPER_ALERT_EMAIL_TO is set but JOBKEEPER_SMTP_HOST is not")
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port or SMTP_PORTS.get(settings.smtp_security, 587),
            username=settings.smtp_username,
            password=settings.smtp_password,
            from_address=settings.email_from or "jobkeeper@localhost",
            security=settings.smtp_security,
            timeout=settings.provider_timeout,
        )
        channels.append(EmailChannel(smtp, settings.alert_email_to))
    if settings.alert_sms_to:
        sid, token, sender = settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from
        if not (sid and token and sender):
            raise ConfigError(
                "JOBKEEPER_ALERT_SMS_TO is set but JOBKEEPER_TWILIO_ACCOUNT_SID, JOBKEEPER_TWILIO_AUTH_TOKEN "
                "and JOBKEEPER_TWILIO_FROM are not all set"
            )
        twilio = TwilioConfig(
            sid, token, sender, base_url=settings.twilio_api_base, timeout=settings.provider_timeout
        )
        channels.append(SmsChannel(twilio, settings.alert_sms_to))
    if settings.pagerduty_routing_key:
        channels.append(
            PagerDutyChannel(
                PagerDutyConfig(settings.pagerduty_routing_key, base_url=settings.pagerduty_api_base)
            )
        )
    return channels


def maintenance_tasks(settings: Settings) -> list[MaintenanceTask]:
    horizons = Horizons(
        finished_jobs=settings.retention_finished_jobs or 7 * DAY,
        queue_metrics=settings.retention_queue_metrics or 30 * DAY,
        acknowledged_alerts=settings.retention_alerts or 30 * DAY,
    )
    alerts = AlertConfig(
        cooldown_seconds=settings.alert_cooldown, worker_lease_seconds=settings.lease_seconds
    )
    return [
        Rescuer(lease_seconds=settings.lease_seconds, interval=max(1.0, settings.lease_seconds / 6)),
        Scheduler(settings),
        DependencySweep(),
        MetricsSnapshot(),
        AlertChecker(alert_channels(settings), alerts),
        Pruner(horizons),
    ]


def maintenance_service(settings: Settings) -> Callable[[AsyncPool, uuid.UUID], Service]:
    """A `Worker` service factory: the worker competes for the lease and, as leader, runs the tasks."""
    tasks = maintenance_tasks(settings)  # built once: a misconfigured channel fails at start-up

    def factory(pool: AsyncPool, worker_id: uuid.UUID) -> Service:
        return Leader(pool, worker_id, tasks, ttl=settings.lease_seconds)

    return factory
