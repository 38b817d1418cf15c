"""send-push: Web Push (VAPID-signed, aes128gcm-encrypted, decrypted here with the subscription's key)
and FCM HTTP v1 (OAuth2 JWT bearer grant against a local token endpoint, then messages:send)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jobkeeper.errors import Retry
from jobkeeper.processors.push import processor as push
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError, ProviderRejectedError
from jobkeeper.providers.errors import ProviderError
from tests.processors.helpers import handler, make_ctx, run, settings
from tests.processors.servers import Reply, http_server
from tests.receivers import Request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


VAPID = ec.generate_private_key(ec.SECP256R1())
SUBSCRIPTION = {"endpoint": "https://push.example.com/x", "keys": {"p256dh": "AAAA", "auth": "BBBB"}}
"""A subscription the payload model accepts, for tests that stop before encrypting."""


class Browser:
    """The receiving side of a push subscription: its key pair and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = {
            "endpoint": endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> Any:
        return json.loads(
            http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        )


def webpush_settings(**overrides: Any) -> Any:
    values = {
        "push_transport": "webpush",
        "vapid_private_key": pem(VAPID),
        "vapid_subject": "mailto:ops@example.com",
        "webpush_allow_http": True,
    }
    return settings(**(values | overrides))


async def test_web_push_is_signed_with_vapid_and_encrypted_for_the_subscription() -> None:
    with http_server(lambda request: (201, "", {"Location": "/messages/m1"})) as http:
        browser = Browser(f"{http.url}/push/sub-1")
        payload = {
            "subscription": browser.subscription,
            "title": "Doors open",
            "body": "Gate B, 7pm",
            "data": {"eventId": "e1"},
            "ttl": 3600,
            "urgency": "high",
            "topic": "doors",
        }
        result = await run(push, webpush_settings(), payload)
    (request,) = http.requests
    assert (request.method, request.path) == ("POST", "/push/sub-1")
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["ttl"] == "3600"
    assert request.headers["urgency"] == "high"
    assert request.headers["topic"] == "doors"
    # RFC 8292: "vapid t=<JWT>,k=<public key>"; the JWT is ES256 over {aud, exp, sub}.
    scheme, _, params = request.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    public = VAPID.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert fields["k"] == b64url(public)
    claims = jwt.decode(fields["t"], VAPID.public_key(), algorithms=["ES256"], audience=http.url)
    assert claims["sub"] == "mailto:ops@example.com"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    # Only the subscription's private key opens the body (RFC 8188 aes128gcm).
    assert browser.decrypt(request.body) == {
        "title": "Doors open",
        "body": "Gate B, 7pm",
        "data": {"eventId": "e1"},
    }
    assert result == {"transport": "webpush", "status": 201, "location": "/messages/m1"}


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_fails_permanently(status: int) -> None:
    with http_server(lambda request: (status, "")) as http, pytest.raises(ProviderRejectedError) as gone:
        await run(
            push, webpush_settings(), {"subscription": Browser(f"{http.url}/s").subscription, "title": "x"}
        )
    assert gone.value.code == f"{status} subscription-gone"
    assert "delete it" in str(gone.value)


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ((400, "bad request"), ProviderRejectedError),
        ((403, "VAPID key mismatch"), ProviderRejectedError),
        ((413, "too big"), ProviderRejectedError),
        ((429, "slow down"), ProviderError),
        ((429, "slow down", {"Retry-After": "30"}), Retry),
        ((500, "oops"), ProviderError),
        ((503, "maintenance"), ProviderError),
    ],
)
async def test_web_push_errors_are_classified(reply: Reply, outcome: type[Exception]) -> None:
    with http_server(lambda request: reply) as http, pytest.raises(outcome) as caught:
        await run(
            push, webpush_settings(), {"subscription": Browser(f"{http.url}/s").subscription, "title": "x"}
        )
    if isinstance(caught.value, ProviderRejectedError):
        assert caught.value.code == str(reply[0])
    elif isinstance(caught.value, Retry):
        assert caught.value.after == 30.0
    else:
        assert isinstance(caught.value, ProviderError)
        assert caught.value.retryable


async def test_web_push_payload_checks() -> None:
    current = webpush_settings(webpush_allow_http=False)
    browser = Browser("http://127.0.0.1:9/s")
    with pytest.raises(InvalidPayloadError) as plain_http:
        await run(push, current, {"subscription": browser.subscription, "title": "x"})
    assert plain_http.value.field == "subscription.endpoint"
    with pytest.raises(InvalidPayloadError) as no_keys:
        await run(
            push, webpush_settings(), {"subscription": {"endpoint": "https://p.example.com/x"}, "title": "x"}
        )
    assert no_keys.value.field == "subscription.keys"
    with pytest.raises(InvalidPayloadError) as too_big:
        await run(
            push, webpush_settings(), {"subscription": browser.subscription, "title": "x", "body": "y" * 3900}
        )
    assert "a push holds" in str(too_big.value)
    broken = {"endpoint": "https://p.example.com/x", "keys": {"p256dh": "AAAA", "auth": "BBBB"}}
    with pytest.raises(InvalidPayloadError) as bad_keys:
        await run(push, webpush_settings(), {"subscription": broken, "title": "x"})
    assert "cannot encrypt for this subscription" in str(bad_keys.value)
    with pytest.raises(InvalidPayloadError) as urgency:
        await run(
            push, webpush_settings(), {"subscription": browser.subscription, "title": "x", "urgency": "now"}
        )
    assert urgency.value.field == "urgency"


def test_vapid_keys_in_every_accepted_form() -> None:
    raw = VAPID.private_numbers().private_value.to_bytes(32, "big")
    der = VAPID.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    for value in (pem(VAPID), b64url(raw), b64url(der)):
        assert push.problems(webpush_settings(vapid_private_key=value))["send-push"] == []
    rsa_pem = pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for bad in ("not a key", rsa_pem):
        (problem,) = push.problems(webpush_settings(vapid_private_key=bad))["send-push"]
        assert problem.startswith("JOBKEEPER_VAPID_PRIVATE_KEY is unusable")
    (subject,) = push.problems(webpush_settings(vapid_subject="ops@example.com"))["send-push"]
    assert "JOBKEEPER_VAPID_SUBJECT" in subject


# -- FCM ----------------------------------------------------------------------------------------------------

SERVICE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fcm_settings(url: str, **overrides: Any) -> Any:
    credentials = {
        "type": "service_account",
        "project_id": "tickets-demo",
        "private_key_id": "key-1",
        "private_key": pem(SERVICE_KEY),
        "client_email": "push@tickets-demo.iam.gserviceaccount.com",
        "token_uri": f"{url}/token",
    }
    values = {"push_transport": "fcm", "fcm_credentials": json.dumps(credentials), "fcm_api_base": url}
    return settings(**(values | overrides))


def fcm(
    send: Callable[[Request], Reply] | None = None, token: Reply | None = None
) -> Callable[[Request], Reply]:
    counter = iter(range(1, 1000))

    def respond(request: Request) -> Reply:
        if request.path == "/token":
            return token or (
                200,
                {"access_token": f"ya29.token-{next(counter)}", "expires_in": 3599, "token_type": "Bearer"},
            )
        if send is not None:
            return send(request)
        return 200, {"name": "projects/tickets-demo/messages/0:1500415314455276%31bd1c9631bd1c96"}

    return respond


async def test_fcm_gets_a_token_with_the_jwt_bearer_grant_and_sends() -> None:
    with http_server(fcm()) as http:
        current = fcm_settings(http.url)
        send = handler(push, current)
        payload = {
            "token": "device-token-1",
            "title": "Doors open",
            "body": "Gate B",
            "data": {"eventId": "e1", "seats": [1, 2]},
            "android": {"priority": "high"},
        }
        first = await send(payload, make_ctx("send-push", payload))
        await send(payload | {"token": "device-token-2"}, make_ctx("send-push", payload))
    token_request, send_request, second_send = http.requests
    assert token_request.path == "/token"
    form = token_request.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assertion = form["assertion"]
    assert jwt.get_unverified_header(assertion)["kid"] == "key-1"
    claims = jwt.decode(
        assertion, SERVICE_KEY.public_key(), algorithms=["RS256"], audience=f"{http.url}/token"
    )
    assert claims["iss"] == "push@tickets-demo.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["exp"] - claims["iat"] == 3600
    assert send_request.path == "/v1/projects/tickets-demo/messages:send"
    assert send_request.headers["authorization"] == "Bearer ya29.token-1"
    assert send_request.json() == {
        "message": {
            "token": "device-token-1",
            "notification": {"title": "Doors open", "body": "Gate B"},
            "data": {"eventId": "e1", "seats": "[1,2]"},  # FCM data values are strings
            "android": {"priority": "high"},
        }
    }
    # The token is cached: the second push reuses it.
    assert second_send.headers["authorization"] == "Bearer ya29.token-1"
    assert second_send.json()["message"]["token"] == "device-token-2"
    assert first == {
        "transport": "fcm",
        "name": "projects/tickets-demo/messages/0:1500415314455276%31bd1c9631bd1c96",
    }


def fcm_error(status: int, code: str, rpc_status: str) -> Reply:
    detail = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    return status, {
        "error": {"code": status, "message": code.lower(), "status": rpc_status, "details": [detail]}
    }


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (fcm_error(404, "UNREGISTERED", "NOT_FOUND"), "404 UNREGISTERED"),
        (fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), "400 INVALID_ARGUMENT"),
        (fcm_error(403, "SENDER_ID_MISMATCH", "PERMISSION_DENIED"), "403 SENDER_ID_MISMATCH"),
    ],
)
async def test_fcm_refusals_are_permanent_with_fcm_s_error_code(reply: Reply, code: str) -> None:
    with http_server(fcm(lambda request: reply)) as http, pytest.raises(ProviderRejectedError) as refused:
        await run(push, fcm_settings(http.url), {"token": "t", "title": "x"})
    assert refused.value.code == code


@pytest.mark.parametrize(
    "reply",
    [fcm_error(429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"), fcm_error(503, "UNAVAILABLE", "UNAVAILABLE")],
)
async def test_fcm_quota_and_outages_are_retried(reply: Reply) -> None:
    with http_server(fcm(lambda request: reply)) as http, pytest.raises(ProviderError) as busy:
        await run(push, fcm_settings(http.url), {"token": "t", "title": "x"})
    assert busy.value.retryable
    assert busy.value.code == f"{reply[0]} {reply[1]['error']['details'][0]['errorCode']}"


async def test_a_rejected_access_token_is_dropped_and_the_job_retried() -> None:
    answers = iter([fcm_error(401, "THIRD_PARTY_AUTH_ERROR", "UNAUTHENTICATED"), (200, {"name": "m"})])
    with http_server(fcm(lambda request: next(answers))) as http:
        send = handler(push, fcm_settings(http.url))
        payload = {"token": "t", "title": "x"}
        with pytest.raises(ProviderError) as unauthenticated:
            await send(payload, make_ctx("send-push", payload))
        await send(payload, make_ctx("send-push", payload))
    assert unauthenticated.value.retryable
    assert http.paths() == ["/token", "/v1/projects/tickets-demo/messages:send"] * 2
    assert http.requests[3].headers["authorization"] == "Bearer ya29.token-2"


async def test_a_refused_service_account_fails_permanently() -> None:
    refusal: Reply = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    with http_server(fcm(token=refusal)) as http, pytest.raises(ProviderRejectedError) as refused:
        await run(push, fcm_settings(http.url), {"token": "t", "title": "x"})
    assert refused.value.code == "400 invalid_grant"
    assert refused.value.provider == "fcm-oauth"


async def test_fcm_payload_checks() -> None:
    current = fcm_settings("http://127.0.0.1:9")
    for payload in ({"title": "x"}, {"token": "a", "topic": "b", "title": "x"}, {"token": "a"}):
        with pytest.raises(InvalidPayloadError):
            await run(push, current, payload)
    with pytest.raises(InvalidPayloadError) as subscription:
        await run(push, current, {"subscription": SUBSCRIPTION, "title": "x"})
    assert subscription.value.field == "subscription"


async def test_unconfigured_push_fails_permanently_naming_the_setting() -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(push, settings(), {"token": "t", "title": "x"})
    assert "JOBKEEPER_PUSH_TRANSPORT" in str(missing.value)
    with pytest.raises(NotConfiguredError) as no_key:
        await run(push, settings(push_transport="webpush"), {"subscription": SUBSCRIPTION, "title": "x"})
    assert "JOBKEEPER_VAPID_PRIVATE_KEY" in str(no_key.value)
    assert "JOBKEEPER_VAPID_SUBJECT" in str(no_key.value)
    with pytest.raises(NotConfiguredError) as no_credentials:
        await run(push, settings(push_transport="fcm"), {"token": "t", "title": "x"})
    assert "JOBKEEPER_FCM_CREDENTIALS" in str(no_credentials.value)
    (broken,) = push.problems(settings(push_transport="fcm", fcm_credentials='{"client_email": "x"}'))[
        "send-push"
    ]
    assert broken.startswith("JOBKEEPER_FCM_CREDENTIALS is unusable")


async def test_with_both_transports_configured_the_payload_decides() -> None:
    with http_server(fcm()) as http:
        both = fcm_settings(
            http.url, push_transport=None, vapid_private_key=pem(VAPID), vapid_subject="mailto:a@b.example"
        )
        both = webpush_settings(
            **{k: getattr(both, k) for k in ("fcm_credentials", "fcm_api_base")}, push_transport=None
        )
        assert push.problems(both)["send-push"] == []
        await run(push, both, {"token": "t", "title": "x"})
        await run(push, both, {"subscription": Browser(f"{http.url}/wp").subscription, "title": "x"})
    assert http.paths() == ["/token", "/v1/projects/tickets-demo/messages:send", "/wp"]
