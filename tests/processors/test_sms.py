"""send-sms through Twilio's Messages API: basic auth, a form body, E.164 numbers, templates, errors."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from jobkeeper.processors.sms import processor as sms
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError, ProviderRejectedError
from jobkeeper.providers.errors import ProviderError
from tests.processors.helpers import run, settings
from tests.processors.servers import http_server
from tests.receivers import Request

SID = "AC" + "0123456789abcdef" * 2


def twilio_settings(url: str, **overrides: Any) -> Any:
    values = {
        "twilio_account_sid": SID,
        "twilio_auth_token": "twilio-token",
        "twilio_from": "+14155550100",
        "twilio_api_base": url,
    }
    return settings(**(values | overrides))


def created(request: Request) -> tuple[int, dict[str, Any]]:
    return 201, {"sid": "SM" + "f" * 32, "status": "queued"}


async def test_a_message_is_posted_as_a_form_with_basic_auth() -> None:
    with http_server(created) as http:
        result = await run(
            sms, twilio_settings(http.url), {"to": "+442079460958", "body": "Doors open at 7pm"}
        )
    (request,) = http.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    expected = base64.b64encode(f"{SID}:twilio-token".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {"To": "+442079460958", "From": "+14155550100", "Body": "Doors open at 7pm"}
    assert result == {"sid": "SM" + "f" * 32, "to": "+442079460958"}


async def test_a_template_renders_the_body(tmp_path: Path) -> None:
    (tmp_path / "promo.txt").write_text("Hi {{ name }}, {{ offer }} <b>today</b>\n")
    with http_server(created) as http:
        current = twilio_settings(http.url, sms_templates_dir=tmp_path)
        await run(
            sms,
            current,
            {"to": "+14155550123", "template": "verification-code", "data": {"code": "123456"}},
        )
        await run(
            sms,
            current,
            {"to": "+14155550123", "template": "promo", "data": {"name": "Ann", "offer": "2 for 1"}},
        )
    first, second = (request.form()["Body"] for request in http.requests)
    assert first == "Your verification code is 123456. It expires in 10 minutes."
    assert second == "Hi Ann, 2 for 1 <b>today</b>"  # text, not HTML: nothing escaped


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": "4155550123", "body": "x"}, "to"),
        ({"to": "+1 000", "body": "x"}, "to"),
        # Both or neither: the payload's rule (a model validator) is about the payload as a whole.
        ({"to": "+14155550123"}, ""),
        ({"to": "+14155550123", "body": "x", "template": "ticket"}, ""),
        ({"to": "+14155550123", "body": "x" * 1601}, "body"),
        ({"to": "+14155550123", "template": "nope"}, "template"),
        ({"to": "+14155550123", "template": "verification-code", "data": {}}, "data"),
    ],
)
async def test_invalid_payloads_fail_permanently(payload: dict[str, Any], field: str) -> None:
    with http_server(created) as http, pytest.raises(InvalidPayloadError) as invalid:
        await run(sms, twilio_settings(http.url), payload)
    assert invalid.value.field == field
    assert http.requests == []


async def test_twilio_refusals_are_permanent_with_twilio_s_code() -> None:
    refusal = {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}
    with http_server(lambda request: (400, refusal)) as http, pytest.raises(ProviderRejectedError) as refused:
        await run(sms, twilio_settings(http.url), {"to": "+14155550123", "body": "x"})
    assert refused.value.code == "21211"
    assert "not a valid phone number" in str(refused.value)
    with (
        http_server(lambda request: (401, {"code": 20003, "message": "Authenticate"})) as http,
        pytest.raises(ProviderRejectedError) as unauthorised,
    ):
        await run(sms, twilio_settings(http.url), {"to": "+14155550123", "body": "x"})
    assert unauthorised.value.code == "401"


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_twilio_busy_or_broken_is_retried(status: int) -> None:
    with (
        http_server(lambda request: (status, {"code": 20429, "message": "Too Many Requests"})) as http,
        pytest.raises(ProviderError) as busy,
    ):
        await run(sms, twilio_settings(http.url), {"to": "+14155550123", "body": "x"})
    assert busy.value.retryable


async def test_unconfigured_twilio_fails_permanently_naming_the_settings() -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(sms, settings(), {"to": "+14155550123", "body": "x"})
    message = str(missing.value)
    for name in ("JOBKEEPER_TWILIO_ACCOUNT_SID", "JOBKEEPER_TWILIO_AUTH_TOKEN", "JOBKEEPER_TWILIO_FROM"):
        assert name in message
    bad_sid = twilio_settings("http://127.0.0.1:9", twilio_account_sid="12345")
    assert any("AC followed by" in problem for problem in sms.problems(bad_sid)["send-sms"])
