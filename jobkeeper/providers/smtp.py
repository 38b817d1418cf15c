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


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            timeout=config.timeout,
        )
    except aiosmtplib.SMTPResponseException as exc:
        # 4xx replies are temporary by definition (RFC 5321); 5xx are permanent.
        raise ProviderError(
            "smtp", f"{exc.code} {exc.message}", retryable=400 <= exc.code < 500, code=str(exc.code)
        ) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ProviderError("smtp", f"{type(exc).__name__}: {exc}", retryable=True, code="network") from exc
