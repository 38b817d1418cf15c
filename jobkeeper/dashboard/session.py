"""The dashboard's session and CSRF protection.

The session cookie holds the signed-in JWT itself: every request verifies it with the API's
`AuthConfig`, so the dashboard has no session store and the same roles, tenant and expiry apply as on the
API. The cookie is HttpOnly, SameSite=Strict, scoped to `/dashboard`, Secure when the request came over
TLS (directly, or as X-Forwarded-Proto from a proxy in JOBKEEPER_TRUSTED_PROXIES) or always with
JOBKEEPER_SESSION_COOKIE_SECURE, and lives no longer than the token.

Every POST carries a CSRF token that is an HMAC of the session token: only a page that was served to the
holder of the session can know it, it needs no server-side state (any API process can check it), and it
changes with each sign-in. The sign-in form, which has no session yet, is protected by a double-submit
cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import jwt
from fastapi import Request, Response

from jobkeeper.config import Settings

COOKIE = "jobkeeper_session"
SIGNIN_COOKIE = "jobkeeper_signin"
PATH = "/dashboard"
CSRF_FIELD = "csrf_token"
_CSRF_CONTEXT = b"jobkeeper-dashboard-csrf-v1"


def csrf_token(session_token: str) -> str:
    key = hashlib.sha256(session_token.encode("utf-8")).digest()
    return hmac.new(key, _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_valid(session_token: str, submitted: str | None) -> bool:
    if not submitted:
        return False
    return hmac.compare_digest(csrf_token(session_token), submitted)


def is_tls(request: Request) -> bool:
    """Whether the cookies get `Secure`. The scheme is https when the request came over TLS, or when a
    trusted proxy said so (uvicorn rewrites it from X-Forwarded-Proto only for JOBKEEPER_TRUSTED_PROXIES)."""
    settings: Settings = request.app.state.api.settings
    return settings.session_cookie_secure or request.url.scheme == "https"


def _lifetime(token: str) -> int | None:
    """Seconds until the token expires (read unverified: the token was verified just before)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return None
    return max(0, int(exp - time.time()))


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    """Both dashboard cookies: the dashboard's path only, no script access, same-site, TLS when served so."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        secure=is_tls(request),
        samesite="strict",
    )


def _clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, secure=is_tls(request), samesite="strict")


def set_session(response: Response, request: Request, token: str) -> None:
    _set_cookie(response, request, COOKIE, token, _lifetime(token))


def clear_session(response: Response, request: Request) -> None:
    _clear_cookie(response, request, COOKIE)


def new_signin_nonce() -> str:
    return secrets.token_urlsafe(32)


def set_signin_nonce(response: Response, request: Request, nonce: str) -> None:
    _set_cookie(response, request, SIGNIN_COOKIE, nonce, 3600)


def clear_signin_nonce(response: Response, request: Request) -> None:
    _clear_cookie(response, request, SIGNIN_COOKIE)


def signin_nonce_valid(request: Request, submitted: str | None) -> bool:
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected, submitted)
