"""send-email: templates rendered to text and HTML, sent over SMTP (STARTTLS, AUTH) or through SendGrid."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from jobkeeper.errors import PermanentError, Retry
from jobkeeper.processors.email import processor as email
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError, ProviderRejectedError
from jobkeeper.providers.errors import ProviderError
from tests.processors.helpers import make_ctx, run, settings
from tests.processors.servers import http_server, self_signed_certificate, smtp_server
from tests.receivers import free_port

RECEIPT = {
    "to": "Ann@Example.com",
    "template": "receipt",
    "data": {
        "customer_name": "Ann <script>alert(1)</script>",
        "order_id": "ord_42",
        "event_name": "Night & Day",
        "items": [{"quantity": 2, "description": "Balcony", "price": "$40.00"}],
        "total": "$80.00",
    },
}


def smtp_settings(port: int, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "email_transport": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "email_from": "Tickets <tickets@jk.example.com>",
    }
    return settings(**(values | overrides))


def sendgrid_settings(url: str, **overrides: Any) -> Any:
    values = {
        "email_transport": "sendgrid",
        "sendgrid_api_key": "SG.test-key",
        "sendgrid_api_base": url,
        "email_from": "Tickets <tickets@jk.example.com>",
    }
    return settings(**(values | overrides))


async def test_smtp_sends_the_rendered_text_and_html_parts() -> None:
    with smtp_server() as server:
        result = await run(email, smtp_settings(server.port), RECEIPT)
    (delivery,) = server.deliveries
    message = delivery.message
    assert delivery.rcpt_tos == ["Ann@example.com"]
    assert delivery.mail_from == "tickets@jk.example.com"
    assert message["Subject"] == "Your receipt for order ord_42"
    assert message["From"] == "Tickets <tickets@jk.example.com>"
    assert message["Message-ID"].endswith("@jk.example.com>")
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    # The text part is not HTML: it is not escaped. The HTML part is.
    assert "Hi Ann <script>alert(1)</script>," in text
    assert "- 2 x Balcony: $40.00" in text
    assert "Total: $80.00" in text
    assert "<script>" not in html
    assert "Ann &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Night &amp; Day" in html
    assert result["transport"] == "smtp"
    assert result["to"] == ["Ann@example.com"]
    assert result["message_id"] == message["Message-ID"]


async def test_smtp_with_starttls_and_authentication(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test certificate, and only it
    with smtp_server(tls=(cert, key), users={"mailer": "s3cret"}) as server:
        current = smtp_settings(
            server.port, smtp_security="starttls", smtp_username="mailer", smtp_password="s3cret"
        )
        await run(email, current, RECEIPT | {"subject": "Override\r\nBcc: evil@x.example.com"})
        wrong = smtp_settings(
            server.port, smtp_security="starttls", smtp_username="mailer", smtp_password="wrong"
        )
        with pytest.raises(ProviderRejectedError) as refused:
            await run(email, wrong, RECEIPT)
    (delivery,) = server.deliveries
    assert delivery.tls
    assert delivery.login == "mailer"
    # A subject from the payload cannot add headers.
    assert delivery.message["Subject"] == "Override Bcc: evil@x.example.com"
    assert delivery.message["Bcc"] is None
    assert set(server.refused_logins) == {"mailer"}
    assert refused.value.code == "535"


async def test_smtp_errors_are_classified() -> None:
    with smtp_server() as server:
        server.refuse_recipients.add("gone@jk.example.com")
        with pytest.raises(ProviderRejectedError) as unknown:
            await run(email, smtp_settings(server.port), RECEIPT | {"to": "gone@jk.example.com"})
        server.reply_to_data = "451 4.3.0 try again later"
        with pytest.raises(ProviderError) as busy:
            await run(email, smtp_settings(server.port), RECEIPT)
    assert unknown.value.code == "550"
    assert "no such user" in str(unknown.value)
    assert busy.value.retryable
    assert busy.value.code == "451"
    with pytest.raises(ProviderError) as down:
        await run(email, smtp_settings(free_port()), RECEIPT)
    assert down.value.retryable
    assert down.value.code == "network"


async def test_sendgrid_request() -> None:
    with http_server(lambda request: (202, "", {"X-Message-Id": "sg-msg-1"})) as http:
        result = await run(
            email,
            sendgrid_settings(http.url),
            RECEIPT | {"to": ["ann@example.com", "bob@example.com"], "replyTo": "help@jk.example.com"},
        )
    (request,) = http.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == "Bearer SG.test-key"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["personalizations"] == [{"to": [{"email": "ann@example.com"}, {"email": "bob@example.com"}]}]
    assert body["from"] == {"email": "tickets@jk.example.com", "name": "Tickets"}
    assert body["reply_to"] == {"email": "help@jk.example.com"}
    assert body["subject"] == "Your receipt for order ord_42"
    plain, html = body["content"]
    assert plain["type"] == "text/plain"
    assert "Total: $80.00" in plain["value"]
    assert html["type"] == "text/html"
    assert "&lt;script&gt;" in html["value"]
    assert body["custom_args"]["template"] == "receipt"
    assert body["headers"]["Message-ID"].endswith("@jk.example.com>")
    assert result["transport"] == "sendgrid"
    assert result["message_id"] == "sg-msg-1"


async def test_sendgrid_attachments() -> None:
    with http_server(lambda request: (202, "")) as http:
        message = email.Email(
            to=("ops@jk.example.com",),
            subject="Report",
            text="see attached",
            attachments=(email.Attachment("r.csv", b"a,b\r\n1,2\r\n", "text/csv"),),
        )
        await email.deliver(sendgrid_settings(http.url), message)
    (attachment,) = http.requests[0].json()["attachments"]
    assert attachment["filename"] == "r.csv"
    assert attachment["type"] == "text/csv"
    assert attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == b"a,b\r\n1,2\r\n"


BAD_ADDRESS = {"errors": [{"message": "Invalid email", "field": "personalizations.0.to.0.email"}]}


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ((400, BAD_ADDRESS), "400 personalizations.0.to.0.email"),
        ((401, {"errors": [{"message": "The provided authorization grant is invalid"}]}), "401"),
        ((413, "payload too large"), "413"),
    ],
)
async def test_sendgrid_refusals_are_permanent_with_the_provider_code(reply: Any, code: str) -> None:
    with http_server(lambda request: reply) as http, pytest.raises(ProviderRejectedError) as refused:
        await run(email, sendgrid_settings(http.url), RECEIPT)
    assert refused.value.code == code
    assert refused.value.provider == "sendgrid"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_sendgrid_busy_or_broken_is_retried(status: int) -> None:
    with http_server(lambda request: (status, "busy")) as http, pytest.raises(ProviderError) as busy:
        await run(email, sendgrid_settings(http.url), RECEIPT)
    assert busy.value.retryable
    assert busy.value.code == str(status)


async def test_sendgrid_retry_after_is_honoured() -> None:
    with (
        http_server(lambda request: (429, {"errors": []}, {"Retry-After": "7"})) as http,
        pytest.raises(Retry) as retry,
    ):
        await run(email, sendgrid_settings(http.url), RECEIPT)
    assert retry.value.after == 7.0
    with pytest.raises(ProviderError) as down:
        await run(email, sendgrid_settings(f"http://127.0.0.1:{free_port()}"), RECEIPT)
    assert down.value.retryable
    assert down.value.code == "network"


async def test_unconfigured_email_fails_permanently_naming_the_setting() -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(email, settings(), RECEIPT)
    assert "JOBKEEPER_EMAIL_TRANSPORT" in str(missing.value)
    with pytest.raises(NotConfiguredError) as no_host:
        await run(email, settings(email_transport="smtp", email_from="a@jk.example.com"), RECEIPT)
    assert "JOBKEEPER_SMTP_HOST" in str(no_host.value)
    with pytest.raises(NotConfiguredError) as no_key:
        await run(email, settings(email_transport="sendgrid", email_from="a@jk.example.com"), RECEIPT)
    assert "JOBKEEPER_SENDGRID_API_KEY" in str(no_key.value)
    with pytest.raises(NotConfiguredError) as no_sender:
        await run(email, settings(smtp_host="127.0.0.1"), RECEIPT)
    assert "JOBKEEPER_EMAIL_FROM" in str(no_sender.value)
    assert isinstance(no_sender.value, PermanentError)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"template": "receipt", "data": RECEIPT["data"]}, "to"),
        (RECEIPT | {"to": "not-an-address"}, "to"),
        (RECEIPT | {"template": "nope"}, "template"),
        (RECEIPT | {"template": "../etc/passwd"}, "template"),
        (RECEIPT | {"data": {"order_id": "x"}}, "data"),
        (RECEIPT | {"data": ["x"]}, "data"),
        (RECEIPT | {"from": "nobody"}, "from"),
        ("just text", ""),
    ],
)
async def test_invalid_payloads_fail_permanently(payload: Any, field: str) -> None:
    with pytest.raises(InvalidPayloadError) as invalid:
        await run(email, smtp_settings(free_port()), payload)
    assert invalid.value.field == field


async def test_a_missing_template_variable_is_named() -> None:
    with pytest.raises(InvalidPayloadError) as invalid:
        await run(email, smtp_settings(free_port()), RECEIPT | {"data": {"order_id": "x"}})
    assert "customer_name" in str(invalid.value) or "event_name" in str(invalid.value)


async def test_your_templates_come_before_the_built_in_ones(tmp_path: Path) -> None:
    (tmp_path / "receipt.txt").write_text("Custom receipt {{ order_id }}\n")
    (tmp_path / "receipt.subject.txt").write_text("Receipt {{ order_id }}")
    (tmp_path / "welcome.txt").write_text("Welcome {{ name }}!")
    (tmp_path / "welcome.html").write_text("<p>Welcome {{ name }}!</p>")
    with smtp_server() as server:
        current = smtp_settings(server.port, email_templates_dir=tmp_path)
        await run(
            email, current, {"to": "a@jk.example.com", "template": "receipt", "data": {"order_id": "o1"}}
        )
        await run(
            email,
            current,
            {"to": "a@jk.example.com", "template": "welcome", "subject": "Hi", "variables": {"name": "<b>"}},
        )
    receipt, welcome = (d.message for d in server.deliveries)
    assert receipt["Subject"] == "Receipt o1"
    assert receipt.get_body(preferencelist=("html",)) is None or receipt.get_content_type() == "text/plain"
    assert receipt.get_content().strip() == "Custom receipt o1"
    html_part = welcome.get_body(preferencelist=("html",))
    assert html_part is not None
    assert html_part.get_content().strip() == "<p>Welcome &lt;b&gt;!</p>"
    assert "ticket" in email.templates(current)
    assert "welcome" in email.templates(current)
    assert not [name for name in email.templates(current) if "." in name or name.startswith("_")]


@pytest.mark.parametrize(
    ("template", "data"),
    [
        (
            "ticket",
            {
                "customer_name": "Ann",
                "event_name": "Show",
                "venue_name": "Hall",
                "event_date": "May 1",
                "tickets": [{"code": "T1", "seat": "A1"}, {"code": "T2"}],
                "ticket_url": "https://t.example/x",
            },
        ),
        ("refund", {"customer_name": "Ann", "order_id": "o1", "amount": "$10.00", "reason": "cancelled"}),
        ("password-reset", {"reset_url": "https://t.example/reset?k=1&x=2"}),
    ],
)
def test_built_in_templates_render(template: str, data: dict[str, Any]) -> None:
    env = email.template_environment(None)
    rendered = email.render(env, template, data)
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.html is not None
    assert rendered.html.startswith("<!DOCTYPE html>")
    if template == "password-reset":
        assert "https://t.example/reset?k=1&amp;x=2" in rendered.html
        assert "https://t.example/reset?k=1&x=2" in rendered.text


def test_configuration_problems() -> None:
    assert email.problems(smtp_settings(25))["send-email"] == []
    both = settings(smtp_host="h", sendgrid_api_key="k", email_from="a@jk.example.com")
    (problem,) = email.problems(both)["send-email"]
    assert "JOBKEEPER_EMAIL_TRANSPORT" in problem
    half_auth = smtp_settings(25, smtp_username="u")
    assert any("JOBKEEPER_SMTP_PASSWORD" in p for p in email.problems(half_auth)["send-email"])
    assert email.transport(settings(sendgrid_api_key="k")) == "sendgrid"
    ctx = make_ctx("send-email", RECEIPT)
    assert ctx.job.type == "send-email"
