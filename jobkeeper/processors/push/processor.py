"""`send-push`: a notification through Web Push (VAPID) or Firebase Cloud Messaging HTTP v1.

Payload (`payload.py`), Web Push (a browser's `PushSubscription.toJSON()`):
    {"subscription": {"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}},
     "title": "Doors open", "body": "…", "data": {...}, "ttl": 86400, "urgency": "high", "topic": "…"}
Payload, FCM (exactly one target):
    {"token": "device registration token" | "topic": "news" | "condition": "'a' in topics",
     "title": "…", "body": "…", "data": {...}, "image": "https://…", "android"/"apns"/"webpush": {...}}

Transport (`JOBKEEPER_PUSH_TRANSPORT`): `webpush` or `fcm`; unset, the one that is configured (both
configured: the payload's shape decides).

Web Push: the JSON message {title, body, data} is encrypted for the subscription with RFC 8188
`aes128gcm` (pywebpush's `WebPusher.encode`, which uses `http_ece`), and signed for with an RFC 8292 VAPID
JWT (`py_vapid`, pywebpush's signer): `Authorization: vapid t=<jwt>,k=<public key>`. The POST itself is
made with httpx, so that it has our timeout and error classification. 201 means accepted; 404 and 410
mean the subscription is gone for good (the job fails permanently, code `410 subscription-gone`: delete
the subscription); 413 and other 4xx are permanent; 429 and 5xx are retried.

FCM: an OAuth2 access token is obtained from the service-account key with the JWT bearer grant (RFC 7523:
an RS256 assertion signed with PyJWT, POSTed to the token URL) and cached until shortly before it expires;
then POST /v1/projects/{project}/messages:send. FCM's `errorCode` is kept: UNREGISTERED (404) and
INVALID_ARGUMENT (400) are permanent; 401 drops the cached token and retries; 429 and 5xx are retried.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from py_vapid import Vapid02
from pywebpush import WebPusher

from jobkeeper.config import Settings
from jobkeeper.processors import outbox
from jobkeeper.processors.push.payload import JOB_TYPE, PushSubscription, SendPush
from jobkeeper.processors.support import (
    InvalidPayloadError,
    NotConfiguredError,
    ProviderRejectedError,
    check,
    json_body,
    parse,
    post,
    processor,
)
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_WEBPUSH_PLAINTEXT = 3800
"""Push services take 4096 encrypted bytes; aes128gcm adds a 86-byte header, a 16-byte tag and padding."""
VAPID_LIFETIME = 12 * 3600
DEFAULT_TTL = 86400


# -- configuration ----------------------------------------------------------------------------------------


def configured_transports(settings: Settings) -> list[str]:
    found = []
    if settings.vapid_private_key is not None or settings.vapid_subject is not None:
        found.append("webpush")
    if settings.fcm_credentials is not None:
        found.append("fcm")
    return found


def unconfigured(settings: Settings) -> bool:
    """No push setting at all: the case the development outbox stands in for."""
    return settings.push_transport is None and not configured_transports(settings)


def _webpush_problems(settings: Settings) -> list[str]:
    found = []
    if settings.vapid_private_key is None:
        found.append("JOBKEEPER_VAPID_PRIVATE_KEY is not set (the VAPID key that signs Web Push requests)")
    else:
        try:
            vapid_key(settings.vapid_private_key)
        except ValueError as exc:
            found.append(f"JOBKEEPER_VAPID_PRIVATE_KEY is unusable: {exc}")
    subject = settings.vapid_subject
    if subject is None:
        found.append("JOBKEEPER_VAPID_SUBJECT is not set (mailto:you@example.com or an https:// URL)")
    elif not subject.startswith(("mailto:", "https://")):
        found.append(f"JOBKEEPER_VAPID_SUBJECT must start with mailto: or https://, got {subject!r}")
    return found


def _fcm_problems(settings: Settings) -> list[str]:
    if settings.fcm_credentials is None:
        return ["JOBKEEPER_FCM_CREDENTIALS is not set (a service-account key's JSON file or text)"]
    try:
        account = service_account(settings.fcm_credentials)
    except ValueError as exc:
        return [f"JOBKEEPER_FCM_CREDENTIALS is unusable: {exc}"]
    if settings.fcm_project_id is None and account.project_id is None:
        return ["JOBKEEPER_FCM_PROJECT_ID is not set and the service-account key names no project_id"]
    return []


def problems(settings: Settings) -> dict[str, list[str]]:
    chosen = settings.push_transport
    if chosen is None:
        candidates = configured_transports(settings)
        if not candidates:
            return {
                JOB_TYPE: [
                    "JOBKEEPER_PUSH_TRANSPORT is not set: set it to webpush (with "
                    "JOBKEEPER_VAPID_PRIVATE_KEY and JOBKEEPER_VAPID_SUBJECT) or fcm (with "
                    "JOBKEEPER_FCM_CREDENTIALS)"
                ]
            }
        found = []
        for candidate in candidates:
            found += _webpush_problems(settings) if candidate == "webpush" else _fcm_problems(settings)
        return {JOB_TYPE: found}
    return {JOB_TYPE: _webpush_problems(settings) if chosen == "webpush" else _fcm_problems(settings)}


def transport_for(settings: Settings, data: SendPush) -> str:
    if settings.push_transport is not None:
        return settings.push_transport
    candidates = configured_transports(settings)
    if len(candidates) == 1:
        return candidates[0]
    return "webpush" if data.subscription is not None else "fcm"


# -- Web Push ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def vapid_key(value: str) -> Vapid02:
    """A P-256 private key: PEM text, or base64url of the raw 32-byte scalar or of DER."""
    try:
        if value.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.strip().encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError("not an EC P-256 (prime256v1) private key")
            return Vapid02(key)
        vapid = Vapid02.from_string(value.strip())
    except ValueError:
        raise
    except Exception as exc:  # py_vapid raises whatever the decoders raise
        raise ValueError(f"not a P-256 private key in PEM or base64url form ({type(exc).__name__})") from None
    if not isinstance(vapid.private_key.curve, ec.SECP256R1):
        raise ValueError("not an EC P-256 (prime256v1) private key")
    return vapid


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def subscription(value: PushSubscription, settings: Settings) -> dict[str, Any]:
    """The subscription pywebpush encrypts for; only https endpoints unless the settings allow http."""
    parts = urlsplit(value.endpoint)
    allowed = ("https", "http") if settings.webpush_allow_http else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
        raise InvalidPayloadError(
            "subscription.endpoint", "must be an https:// URL (push services never give anything else)"
        )
    return {"endpoint": value.endpoint, "keys": {"p256dh": value.keys["p256dh"], "auth": value.keys["auth"]}}


def encrypt(target: dict[str, Any], plaintext: bytes) -> bytes:
    """RFC 8188 aes128gcm for the subscription's keys (a fresh ephemeral key and salt each time)."""
    try:
        encoded = WebPusher(target).encode(plaintext, "aes128gcm")
    except Exception as exc:  # WebPushException, ECEException, cryptography's ValueError: bad keys
        raise InvalidPayloadError(
            "subscription.keys", f"cannot encrypt for this subscription: {exc}"
        ) from None
    body: bytes = encoded["body"]
    return body


def vapid_authorization(settings: Settings, endpoint: str) -> str:
    if settings.vapid_private_key is None or settings.vapid_subject is None:
        raise NotConfiguredError(JOB_TYPE, _webpush_problems(settings))
    claims = {
        "aud": _origin(endpoint),
        "exp": int(time.time()) + VAPID_LIFETIME,
        "sub": settings.vapid_subject,
    }
    try:
        headers = vapid_key(settings.vapid_private_key).sign(claims)
    except Exception as exc:  # VapidException: a subject or audience it will not sign
        raise NotConfiguredError(JOB_TYPE, [f"VAPID signing failed: {exc}"]) from None
    authorization: str = headers["Authorization"]
    return authorization


def webpush_message(data: SendPush) -> bytes:
    if data.title is None:
        raise InvalidPayloadError("title", "is required")
    message: dict[str, Any] = {"title": data.title, "body": data.body or ""}
    if data.data:
        message["data"] = data.data
    if data.image is not None:
        message["image"] = data.image
    plaintext = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    if len(plaintext) > MAX_WEBPUSH_PLAINTEXT:
        raise InvalidPayloadError(
            "",
            f"the notification is {len(plaintext)} bytes of JSON; a push holds {MAX_WEBPUSH_PLAINTEXT}",
        )
    return plaintext


async def send_webpush(settings: Settings, data: SendPush) -> dict[str, Any]:
    if data.subscription is None:
        raise InvalidPayloadError("subscription", "the push transport is webpush: give a subscription")
    target = subscription(data.subscription, settings)
    body = encrypt(target, webpush_message(data))
    headers = {
        "Authorization": vapid_authorization(settings, target["endpoint"]),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(data.ttl if data.ttl is not None else DEFAULT_TTL),
    }
    if data.urgency is not None:
        headers["Urgency"] = data.urgency
    if data.topic is not None:
        headers["Topic"] = data.topic
    response = await post(
        "webpush", target["endpoint"], timeout=settings.provider_timeout, content=body, headers=headers
    )
    if response.status_code in (404, 410):
        raise ProviderRejectedError(
            "webpush",
            f"{response.status_code} subscription-gone",
            f"webpush: HTTP {response.status_code}: the push subscription has expired or was removed; "
            "delete it and stop sending to it",
        )
    check("webpush", response)
    return {
        "transport": "webpush",
        "status": response.status_code,
        "location": response.headers.get("location"),
    }


# -- FCM HTTP v1 ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    client_email: str
    private_key: rsa.RSAPrivateKey
    private_key_id: str | None
    project_id: str | None
    token_uri: str | None


@lru_cache(maxsize=4)
def service_account(value: str) -> ServiceAccount:
    try:
        info = json.loads(value)
    except ValueError:
        raise ValueError("not a service-account key (JSON)") from None
    if not isinstance(info, dict):
        raise ValueError("not a service-account key (JSON object)")
    missing = [name for name in ("client_email", "private_key") if not isinstance(info.get(name), str)]
    if missing:
        raise ValueError(f"the key has no {' and no '.join(missing)}")
    try:
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"its private_key is not a PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("its private_key is not an RSA key (RS256 needs one)")
    return ServiceAccount(
        client_email=info["client_email"],
        private_key=key,
        private_key_id=info.get("private_key_id"),
        project_id=info.get("project_id"),
        token_uri=info.get("token_uri"),
    )


class AccessTokens:
    """OAuth2 access tokens cached until a minute before they expire. Jobs that need a token at the same
    time share one token request (a shielded task, so that a cancelled job does not cancel the others')."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cached: tuple[tuple[str, str], str, float] | None = None
        self._pending: tuple[tuple[str, str], asyncio.Task[tuple[str, float]]] | None = None

    async def get(self, key: tuple[str, str], fetch: Callable[[], Awaitable[tuple[str, float]]]) -> str:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._cached, self._pending = loop, None, None
        if self._cached is not None and self._cached[0] == key and time.monotonic() < self._cached[2]:
            return self._cached[1]
        if self._pending is None or self._pending[0] != key or self._pending[1].done():
            self._pending = (key, loop.create_task(_call(fetch)))
        task = self._pending[1]
        token, lifetime = await asyncio.shield(task)
        self._cached = (key, token, time.monotonic() + max(lifetime - 60.0, 0.0))
        return token

    def invalidate(self, token: str) -> None:
        if self._cached is not None and self._cached[1] == token:
            self._cached = None


async def _call(fetch: Callable[[], Awaitable[tuple[str, float]]]) -> tuple[str, float]:
    return await fetch()


def token_url(settings: Settings, account: ServiceAccount) -> str:
    return settings.fcm_token_url or account.token_uri or DEFAULT_TOKEN_URL


async def fetch_access_token(settings: Settings, account: ServiceAccount) -> tuple[str, float]:
    """The JWT bearer grant (RFC 7523): returns (access token, lifetime in seconds)."""
    url = token_url(settings, account)
    now = int(time.time())
    headers = {"kid": account.private_key_id} if account.private_key_id else None
    assertion = jwt.encode(
        {"iss": account.client_email, "scope": FCM_SCOPE, "aud": url, "iat": now, "exp": now + 3600},
        account.private_key,
        algorithm="RS256",
        headers=headers,
    )
    response = await post(
        "fcm-oauth",
        url,
        timeout=settings.provider_timeout,
        data={"grant_type": JWT_BEARER, "assertion": assertion},
    )
    detail = json_body(response)
    code = None
    if not response.is_success and isinstance(detail, dict):
        code = f"{response.status_code} {detail.get('error', '')}".strip()
    if response.status_code == 401:  # invalid_client: the key was deleted or disabled
        raise ProviderRejectedError("fcm-oauth", code, f"fcm-oauth: HTTP 401: {response.text[:300]}")
    check("fcm-oauth", response, code=code)
    if not isinstance(detail, dict) or not isinstance(detail.get("access_token"), str):
        raise ProviderError(
            "fcm-oauth", "the token endpoint answered without an access_token", retryable=True
        )
    lifetime = detail.get("expires_in", 3600)
    return detail["access_token"], float(lifetime) if isinstance(lifetime, int | float) else 3600.0


def _string_values(data: Mapping[str, Any]) -> dict[str, str]:
    """FCM's `data` holds strings only: other JSON values are sent as their JSON text."""
    return {
        str(key): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in data.items()
    }


def fcm_message(data: SendPush) -> dict[str, Any]:
    targets = {
        name: value
        for name, value in (("token", data.token), ("topic", data.topic), ("condition", data.condition))
        if value is not None
    }
    if len(targets) != 1:
        raise InvalidPayloadError("token", "give exactly one FCM target: token, topic or condition")
    message: dict[str, Any] = dict(targets)
    notification = {"title": data.title, "body": data.body, "image": data.image}
    notification = {k: v for k, v in notification.items() if v is not None}
    if notification:
        message["notification"] = notification
    if data.data:
        message["data"] = _string_values(data.data)
    for platform, block in (("android", data.android), ("apns", data.apns), ("webpush", data.webpush)):
        if block:
            message[platform] = block
    return {"message": message}


def _fcm_code(response: httpx.Response) -> str:
    """`404 UNREGISTERED`: the HTTP status and FCM's errorCode (else the google.rpc status)."""
    detail = json_body(response)
    error = detail.get("error") if isinstance(detail, dict) else None
    code = None
    if isinstance(error, dict):
        for item in error.get("details") or []:
            if isinstance(item, dict) and item.get("errorCode"):
                code = item["errorCode"]
                break
        code = code or error.get("status")
    return f"{response.status_code} {code}" if code else str(response.status_code)


class FcmSender:
    def __init__(self) -> None:
        self.tokens = AccessTokens()

    async def send(self, settings: Settings, data: SendPush) -> dict[str, Any]:
        assert settings.fcm_credentials is not None
        account = service_account(settings.fcm_credentials)
        project = settings.fcm_project_id or account.project_id
        body = fcm_message(data)
        key = (account.client_email, token_url(settings, account))
        token = await self.tokens.get(key, lambda: fetch_access_token(settings, account))
        response = await post(
            "fcm",
            f"{settings.fcm_api_base}/v1/projects/{quote(project or '', safe='')}/messages:send",
            timeout=settings.provider_timeout,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            # The token expired early or was revoked: fetch a new one on the retry.
            self.tokens.invalidate(token)
            raise ProviderError(
                "fcm", f"HTTP 401: {response.text[:300]}", retryable=True, code=_fcm_code(response)
            )
        check("fcm", response, code=None if response.is_success else _fcm_code(response))
        detail = json_body(response)
        name = detail.get("name") if isinstance(detail, dict) else None
        return {"transport": "fcm", "name": name}


# -- the job ----------------------------------------------------------------------------------------------


def keep_in_outbox(ctx: JobContext, settings: Settings, data: SendPush) -> dict[str, Any]:
    """The push checked as a real transport would check it, kept in the development outbox."""
    if data.subscription is not None:
        to = subscription(data.subscription, settings)["endpoint"]
        message = json.loads(webpush_message(data))
        title, body, extra = message["title"], message["body"], message.get("data")
    else:
        fcm = fcm_message(data)["message"]
        target = next(name for name in ("token", "topic", "condition") if name in fcm)
        to = f"{target}:{fcm[target]}"
        notification = fcm.get("notification", {})
        title, body, extra = notification.get("title"), notification.get("body", ""), fcm.get("data")
    return outbox.keep(ctx, "push", [to], title, body, data=extra)


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Register `send-push` in `registry` unless the type has a handler already (yours wins)."""
    fcm = FcmSender()

    @processor(registry, JOB_TYPE, "communication", settings)
    async def send_push(payload: Any, ctx: JobContext, current: Settings) -> dict[str, Any]:
        data = parse(SendPush, payload)
        if unconfigured(current):
            if outbox.enabled(current):
                return keep_in_outbox(ctx, current, data)
            raise NotConfiguredError(JOB_TYPE, problems(current)[JOB_TYPE])
        chosen = transport_for(current, data)
        found = _webpush_problems(current) if chosen == "webpush" else _fcm_problems(current)
        if found:
            raise NotConfiguredError(JOB_TYPE, found)
        if chosen == "webpush":
            result = await send_webpush(current, data)
        else:
            if data.subscription is not None:
                raise InvalidPayloadError(
                    "subscription", "the push transport is fcm: give token, topic or condition"
                )
            result = await fcm.send(current, data)
        ctx.logger.info("push sent via %s", chosen)
        return result
