"""Twilio Programmable Messaging: POST /2010-04-01/Accounts/{sid}/Messages.json, form-encoded, basic auth."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from jobkeeper.providers.errors import ProviderError, check_response, transport_error

DEFAULT_BASE_URL = "https://api.twilio.com"


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    from_number: str
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 10.0


async def send_sms(config: TwilioConfig, to: str, body: str) -> str:
    """Send one SMS; returns the message SID."""
    url = f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
    try:
        async with httpx.AsyncClient(
            timeout=config.timeout, auth=(config.account_sid, config.auth_token)
        ) as http:
            response = await http.post(url, data={"To": to, "From": config.from_number, "Body": body})
    except httpx.HTTPError as exc:
        raise transport_error("twilio", exc) from exc
    if response.status_code == 400:
        detail = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        code = detail.get("code")
        # A 400 is a request Twilio refuses (bad number, unsubscribed recipient…): retrying cannot help.
        message = detail.get("message", response.text[:300])
        raise ProviderError("twilio", f"{code}: {message}", retryable=False, code=str(code))
    check_response("twilio", response)
    sid: str = response.json()["sid"]
    return sid
