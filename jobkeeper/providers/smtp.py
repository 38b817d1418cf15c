"""Email over SMTP (aiosmtplib): implicit TLS or STARTTLS, optional authentication."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from jobkeeper.providers.errors import ProviderError


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    from_address: str = "jobkeeper@localhost"
    security: str = "starttls"
    """`starttls` (upgrade after connecting, port 587), `tls` (implicit TLS, port 465) or `none`."""
    timeout: float = 15.0


def build_message(
    config: SmtpConfig, to: list[str], subject: str, text: str, html: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.from_address
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def send(config: SmtpConfig, message: EmailMessage) -> dict[str, str]:
    """Send `message`; returns the recipients the server refused while accepting others (address →
    reply), which a retry must not resend to. Raises `ProviderError`: 4xx replies are temporary by
    definition (RFC 5321) and retryable, 5xx permanent; when every recipient is refused, their own codes
    decide (550 "no such user" is permanent)."""
    try:
        refused, _ = await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            timeout=config.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = sorted({item.code for item in exc.recipients}) or [0]
        details = "; ".join(f"{item.recipient}: {item.code} {item.message}" for item in exc.recipients)
        temporary = any(400 <= code < 500 for code in codes)
        raise ProviderError("smtp", details or str(exc), retryable=temporary, code=str(codes[0])) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise ProviderError(
            "smtp", f"{exc.code} {exc.message}", retryable=400 <= exc.code < 500, code=str(exc.code)
        ) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ProviderError("smtp", f"{type(exc).__name__}: {exc}", retryable=True, code="network") from exc
    return {address: f"{reply.code} {reply.message}" for address, reply in refused.items()}
