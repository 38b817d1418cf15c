"""`send-email`: a Jinja2 template rendered to a text and an HTML part, sent over SMTP or through SendGrid.

Payload (`payload.py`):
    {"to": "ann@example.com" | [...], "template": "receipt", "data": {...},
     "subject": optional (default: the template's NAME.subject.txt), "from": optional, "replyTo": optional}

Templates are looked up in `JOBKEEPER_EMAIL_TEMPLATES_DIR` first, then among the built-ins
(`templates/email/`: receipt, ticket, refund, password-reset, report). A template NAME is `NAME.txt` (the
text part, required), `NAME.html` (the HTML part, optional, autoescaped) and `NAME.subject.txt`. A
variable the template uses but the payload lacks fails the job permanently (StrictUndefined): an email
with holes in it is worse than none.

Transport (`JOBKEEPER_EMAIL_TRANSPORT`): `smtp` through `jobkeeper.providers.smtp` (aiosmtplib, STARTTLS or
implicit TLS, optional AUTH), or `sendgrid` through SendGrid's v3 API (POST /v3/mail/send, Bearer key).
`deliver()` is also used by `generate-report` to mail its report.
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
from email_validator import EmailNotValidError, validate_email

from jobkeeper.config import Settings
from jobkeeper.errors import PermanentError
from jobkeeper.processors import outbox
from jobkeeper.processors.email.payload import JOB_TYPE, SendEmail
from jobkeeper.processors.support import (
    InvalidPayloadError,
    NotConfiguredError,
    check,
    json_body,
    parse,
    post,
    processor,
    reraise,
)
from jobkeeper.processors.support import (
    template_environment as support_templates,
)
from jobkeeper.providers import smtp
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

BUILTIN_TEMPLATES = Path(__file__).parents[1] / "templates" / "email"
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


# -- configuration ----------------------------------------------------------------------------------------


def transport(settings: Settings) -> str | None:
    """The configured transport: the explicit setting, else the only one whose settings are present."""
    if settings.email_transport is not None:
        return settings.email_transport
    has_smtp, has_sendgrid = settings.smtp_host is not None, settings.sendgrid_api_key is not None
    if has_smtp != has_sendgrid:
        return "smtp" if has_smtp else "sendgrid"
    return None


def transport_problems(settings: Settings) -> list[str]:
    """What keeps emails from being sent at all (the sender aside)."""
    chosen = transport(settings)
    if chosen is None:
        if settings.smtp_host is not None and settings.sendgrid_api_key is not None:
            return [
                "both JOBKEEPER_SMTP_HOST and JOBKEEPER_SENDGRID_API_KEY are set: choose one with "
                "JOBKEEPER_EMAIL_TRANSPORT (smtp or sendgrid)"
            ]
        return [
            "JOBKEEPER_EMAIL_TRANSPORT is not set: set it to smtp (with JOBKEEPER_SMTP_HOST) or sendgrid "
            "(with JOBKEEPER_SENDGRID_API_KEY)"
        ]
    found = []
    if chosen == "smtp":
        if settings.smtp_host is None:
            found.append("JOBKEEPER_SMTP_HOST is not set (JOBKEEPER_EMAIL_TRANSPORT is smtp)")
        if (settings.smtp_username is None) != (settings.smtp_password is None):
            missing = "PASSWORD" if settings.smtp_password is None else "USERNAME"
            found.append(
                f"JOBKEEPER_SMTP_{missing} is not set: SMTP authentication needs a username and a password"
            )
    elif settings.sendgrid_api_key is None:
        found.append("JOBKEEPER_SENDGRID_API_KEY is not set (JOBKEEPER_EMAIL_TRANSPORT is sendgrid)")
    return found


def unconfigured(settings: Settings) -> bool:
    """No email setting at all: the case the development outbox stands in for."""
    return all(v is None for v in (settings.email_transport, settings.smtp_host, settings.sendgrid_api_key))


def problems(settings: Settings) -> dict[str, list[str]]:
    found = transport_problems(settings)
    if settings.email_from is None:
        found.append("JOBKEEPER_EMAIL_FROM is not set (the sender of emails whose job names none)")
    else:
        try:
            sender_address(settings.email_from, "JOBKEEPER_EMAIL_FROM")
        except PermanentError as exc:
            found.append(str(exc))
    directory = settings.email_templates_dir
    if directory is not None and not directory.is_dir():
        found.append(f"JOBKEEPER_EMAIL_TEMPLATES_DIR names {str(directory)!r}, which is not a directory")
    return {JOB_TYPE: found}


# -- messages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Email:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    sender: str | None = None
    """`Name <address>` or an address; None: JOBKEEPER_EMAIL_FROM."""
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()
    message_id: str | None = None
    """A stable id (e.g. from the job's id): a re-sent message keeps its Message-ID."""
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Sent to SendGrid as custom_args (e.g. the job id), to find a message from its events."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def recipient(value: str, field: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidPayloadError(field, f"{value!r} is not a valid email address: {exc}") from None


def recipients(value: str | Sequence[str], field: str = "to") -> tuple[str, ...]:
    """One address or a list of them (as the payload models allow), normalised, each once."""
    items = [value] if isinstance(value, str) else value
    return tuple(dict.fromkeys(recipient(item, field) for item in items))


def sender_address(value: str, field: str) -> tuple[str, str]:
    """(display name, address) of `Name <address>` or a bare address."""
    name, address = email.utils.parseaddr(value)
    if not address:
        raise InvalidPayloadError(field, f"{value!r} is not an email address")
    return name, recipient(address, field)


def one_line(value: str) -> str:
    """Header text: no line breaks (no header injection), runs of white space collapsed."""
    return " ".join(value.split())


# -- templates --------------------------------------------------------------------------------------------


def template_environment(user_dir: Path | None, builtin_dir: Path = BUILTIN_TEMPLATES) -> jinja2.Environment:
    """Templates of `user_dir` first, then the built-ins. HTML is autoescaped; text parts are not (they are
    not HTML). Undefined variables raise instead of rendering as empty text."""
    return support_templates(user_dir, builtin_dir, html=True)


def template_name(value: str, field: str = "template") -> str:
    if not _TEMPLATE_NAME.match(value):
        raise InvalidPayloadError(field, f"{value!r} is not a template name (letters, digits, '-' and '_')")
    return value


def render_template(env: jinja2.Environment, filename: str, data: Mapping[str, Any], field: str) -> str:
    try:
        return env.get_template(filename).render(**data)
    except jinja2.UndefinedError as exc:
        raise InvalidPayloadError(field, f"template {filename!r} needs a value: {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise PermanentError(f"template {filename!r} line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise PermanentError(f"template {filename!r}: {exc}") from None


def available(env: jinja2.Environment, suffix: str) -> list[str]:
    """Template names: `receipt.subject.txt` and `_layout.html` are parts, not templates to name."""
    names = {name[: -len(suffix)] for name in env.list_templates() if name.endswith(suffix)}
    return sorted(name for name in names if _TEMPLATE_NAME.match(name))


def has_template(env: jinja2.Environment, filename: str, beside: str | None = None) -> bool:
    """Whether `filename` exists (in the same directory as template `beside`, when given: the parts of
    one email template come from one directory, never half from yours and half from the built-ins)."""
    try:
        found = env.get_template(filename)
    except jinja2.TemplateNotFound:
        return False
    except jinja2.TemplateError as exc:
        raise PermanentError(f"template {filename!r}: {exc}") from None
    if beside is None or found.filename is None:
        return True
    other = env.get_template(beside).filename
    return other is None or Path(found.filename).parent == Path(other).parent


def render(
    env: jinja2.Environment, name: str, data: Mapping[str, Any], subject: str | None = None
) -> Rendered:
    """Render template `name`: its text part, its HTML part if it has one, and its subject unless given."""
    name = template_name(name)
    if not has_template(env, f"{name}.txt"):
        known = ", ".join(available(env, ".txt")) or "none"
        raise InvalidPayloadError("template", f"no email template {name!r} (available: {known})")
    body = render_template(env, f"{name}.txt", data, "data")
    html = None
    if has_template(env, f"{name}.html", beside=f"{name}.txt"):
        html = render_template(env, f"{name}.html", data, "data")
    if subject is None:
        if not has_template(env, f"{name}.subject.txt", beside=f"{name}.txt"):
            raise InvalidPayloadError("subject", f"is required: template {name!r} has no subject")
        subject = render_template(env, f"{name}.subject.txt", data, "data")
    subject = one_line(subject)
    if not subject:
        raise InvalidPayloadError("subject", "renders empty")
    return Rendered(subject, body, html)


# -- transports -------------------------------------------------------------------------------------------


def smtp_config(settings: Settings, sender: str) -> smtp.SmtpConfig:
    assert settings.smtp_host is not None
    security = settings.smtp_security
    return smtp.SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port or SMTP_DEFAULT_PORTS[security],
        username=settings.smtp_username,
        password=settings.smtp_password,
        from_address=sender,
        security=security,
        timeout=settings.provider_timeout,
    )


def mime_message(config: smtp.SmtpConfig, message: Email) -> EmailMessage:
    built = smtp.build_message(config, list(message.to), message.subject, message.text, message.html)
    built["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    if message.message_id:
        built["Message-ID"] = message.message_id
    if message.reply_to:
        built["Reply-To"] = message.reply_to
    for attachment in message.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        built.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return built


async def send_smtp(settings: Settings, message: Email, sender: str) -> dict[str, Any]:
    config = smtp_config(settings, sender)
    try:
        refused = await smtp.send(config, mime_message(config, message))
    except ProviderError as exc:
        reraise(exc)
    if refused:
        return {"transport": "smtp", "message_id": message.message_id, "refused": refused}
    return {"transport": "smtp", "message_id": message.message_id}


def _address(value: str) -> dict[str, str]:
    name, address = email.utils.parseaddr(value)
    return {"email": address, "name": name} if name else {"email": address}


def sendgrid_body(message: Email, sender: str) -> dict[str, Any]:
    content = [{"type": "text/plain", "value": message.text}]
    if message.html is not None:
        content.append({"type": "text/html", "value": message.html})
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": address} for address in message.to]}],
        "from": _address(sender),
        "subject": message.subject,
        "content": content,
    }
    if message.reply_to:
        body["reply_to"] = _address(message.reply_to)
    if message.message_id:
        body["headers"] = {"Message-ID": message.message_id}
    if message.tags:
        body["custom_args"] = dict(message.tags)
    if message.attachments:
        body["attachments"] = [
            {
                "content": base64.b64encode(item.content).decode("ascii"),
                "type": item.mime_type,
                "filename": item.filename,
                "disposition": "attachment",
            }
            for item in message.attachments
        ]
    return body


def _sendgrid_code(response: Any) -> str:
    """SendGrid's errors name the field at fault: `400 personalizations.0.to.0.email`."""
    detail = json_body(response)
    errors = detail.get("errors") if isinstance(detail, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    field = first.get("field")
    return f"{response.status_code} {field}" if field else str(response.status_code)


async def send_sendgrid(settings: Settings, message: Email, sender: str) -> dict[str, Any]:
    assert settings.sendgrid_api_key is not None
    response = await post(
        "sendgrid",
        f"{settings.sendgrid_api_base}/v3/mail/send",
        timeout=settings.provider_timeout,
        json=sendgrid_body(message, sender),
        headers={"Authorization": f"Bearer {settings.sendgrid_api_key}"},
    )
    check("sendgrid", response, code=None if response.is_success else _sendgrid_code(response))
    return {"transport": "sendgrid", "message_id": response.headers.get("x-message-id") or message.message_id}


async def deliver(settings: Settings, message: Email, *, job_type: str = JOB_TYPE) -> dict[str, Any]:
    """Send `message` with the configured transport. Raises `NotConfiguredError` when email is not set up,
    `ProviderRejectedError` for a refusal, and a retryable `ProviderError` (or `Retry`) otherwise."""
    found = transport_problems(settings)
    if found:
        raise NotConfiguredError(job_type, found)
    sender = message.sender or settings.email_from
    if sender is None:
        raise NotConfiguredError(job_type, ["JOBKEEPER_EMAIL_FROM is not set and the job names no sender"])
    name, address = sender_address(sender, "from")
    sender = email.utils.formataddr((one_line(name), address)) if name else address
    if transport(settings) == "sendgrid":
        return await send_sendgrid(settings, message, sender)
    return await send_smtp(settings, message, sender)


def message_id(job_id: object, sender: str | None) -> str:
    domain = "jobkeeper.local"
    if sender:
        address = email.utils.parseaddr(sender)[1]
        if "@" in address:
            domain = address.rsplit("@", 1)[1]
    return f"<{job_id}@{domain}>"


# -- the job ----------------------------------------------------------------------------------------------


def build(data: SendEmail, settings: Settings, job_id: object) -> Email:
    """The email a `send-email` payload asks for (rendered)."""
    to = recipients(data.to)
    reply_to = recipient(data.replyTo, "replyTo") if data.replyTo is not None else None
    variables = data.data if data.data is not None else data.variables
    env = template_environment(settings.email_templates_dir)
    rendered = render(env, data.template, variables or {}, data.subject)
    return Email(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        sender=data.from_,
        reply_to=reply_to,
        message_id=message_id(job_id, data.from_ or settings.email_from),
        tags={"jobkeeper_job_id": str(job_id), "template": data.template},
    )


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Register `send-email` in `registry` unless the type has a handler already (yours wins)."""

    @processor(registry, JOB_TYPE, "communication", settings)
    async def send_email(payload: Any, ctx: JobContext, current: Settings) -> dict[str, Any]:
        to_outbox = outbox.enabled(current) and unconfigured(current)
        found = transport_problems(current)
        if found and not to_outbox:
            raise NotConfiguredError(JOB_TYPE, found)
        message = build(parse(SendEmail, payload), current, ctx.job.id)
        if to_outbox:
            to = list(message.to)
            return outbox.keep(ctx, "email", to, message.subject, message.text, html=message.html)
        result = await deliver(current, message)
        ctx.logger.info("email sent to %d recipients via %s", len(message.to), result["transport"])
        return {**result, "to": list(message.to), "subject": message.subject}


def templates(settings: Settings) -> Sequence[str]:
    """Names of the email templates available with these settings (yours and the built-ins)."""
    return available(template_environment(settings.email_templates_dir), ".txt")
