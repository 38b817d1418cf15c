"""`send-sms`: one text message through Twilio's Messages API (`jobkeeper.providers.twilio`).

Payload (`payload.py`):
    {"to": "+14155550100", "body": "Doors open at 7pm"}
    {"to": "+14155550100", "template": "ticket", "data": {...}}

`to` must be a valid E.164 number. A template NAME is `NAME.txt`,
looked up in `JOBKEEPER_SMS_TEMPLATES_DIR` first, then among the built-ins (`templates/sms/`: ticket,
verification-code, event-reminder); its rendered text is stripped of surrounding white space.

Twilio's answers: 201 sent (the message SID is the job's result); 400 (invalid number, unsubscribed
recipient, …) is permanent with Twilio's error code; 429 and 5xx are retried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import phonenumbers

from jobkeeper.config import Settings
from jobkeeper.processors import outbox
from jobkeeper.processors.email.processor import has_template, render_template, template_name
from jobkeeper.processors.sms.payload import JOB_TYPE, MAX_BODY, SendSms
from jobkeeper.processors.support import (
    InvalidPayloadError,
    NotConfiguredError,
    parse,
    processor,
    reraise,
)
from jobkeeper.processors.support import (
    template_environment as support_templates,
)
from jobkeeper.providers import twilio
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

BUILTIN_TEMPLATES = Path(__file__).parents[1] / "templates" / "sms"


def problems(settings: Settings) -> dict[str, list[str]]:
    found = []
    for name, value in (
        ("JOBKEEPER_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
        ("JOBKEEPER_TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
        ("JOBKEEPER_TWILIO_FROM", settings.twilio_from),
    ):
        if value is None:
            found.append(f"{name} is not set")
    sid = settings.twilio_account_sid
    if sid is not None and not (sid.startswith("AC") and len(sid) == 34):
        found.append("JOBKEEPER_TWILIO_ACCOUNT_SID must be an account SID: AC followed by 32 hex digits")
    directory = settings.sms_templates_dir
    if directory is not None and not directory.is_dir():
        found.append(f"JOBKEEPER_SMS_TEMPLATES_DIR names {str(directory)!r}, which is not a directory")
    return {JOB_TYPE: found}


def unconfigured(settings: Settings) -> bool:
    """No Twilio setting at all: the case the development outbox stands in for."""
    twilio_settings = (settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from)
    return all(value is None for value in twilio_settings)


def e164(value: str) -> str:
    """The number as Twilio writes it (the model checked that it is a valid E.164 number)."""
    return phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.E164)


def template_environment(user_dir: Path | None, builtin_dir: Path = BUILTIN_TEMPLATES) -> jinja2.Environment:
    """Plain text: no autoescaping; undefined variables raise."""
    return support_templates(user_dir, builtin_dir, html=False)


def message_body(data: SendSms, settings: Settings) -> str:
    body = data.body
    if data.template is not None:
        env = template_environment(settings.sms_templates_dir)
        filename = f"{template_name(data.template)}.txt"
        if not has_template(env, filename):
            raise InvalidPayloadError("template", f"no SMS template {data.template!r}")
        variables = data.data if data.data is not None else data.variables
        body = render_template(env, filename, variables or {}, "data").strip()
    assert body is not None
    if not body.strip():
        raise InvalidPayloadError("body", "is empty")
    if len(body) > MAX_BODY:
        raise InvalidPayloadError("body", f"is {len(body)} characters; Twilio takes at most {MAX_BODY}")
    return body


def twilio_config(settings: Settings) -> twilio.TwilioConfig:
    """The Twilio settings, or `NotConfiguredError` naming what is missing."""
    found = problems(settings)[JOB_TYPE]
    sid, token, sender = settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from
    if found or sid is None or token is None or sender is None:
        raise NotConfiguredError(JOB_TYPE, found)
    return twilio.TwilioConfig(
        account_sid=sid,
        auth_token=token,
        from_number=sender,
        base_url=settings.twilio_api_base,
        timeout=settings.provider_timeout,
    )


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Register `send-sms` in `registry` unless the type has a handler already (yours wins)."""

    @processor(registry, JOB_TYPE, "communication", settings)
    async def send_sms(payload: Any, ctx: JobContext, current: Settings) -> dict[str, Any]:
        to_outbox = outbox.enabled(current) and unconfigured(current)
        config = None if to_outbox else twilio_config(current)
        data = parse(SendSms, payload)
        to = e164(data.to)
        message = message_body(data, current)
        if config is None:
            return outbox.keep(ctx, "sms", [to], None, message)
        try:
            sid = await twilio.send_sms(config, to, message)
        except ProviderError as exc:
            reraise(exc)
        ctx.logger.info("SMS %s sent", sid)
        return {"sid": sid, "to": to}
