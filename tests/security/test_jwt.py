"""JWT attacks beyond tests/api/test_auth.py (which covers alg none, a wrong HMAC key, expiry, audience,
issuer, missing exp/sub/tenant, HS384 and RS/ES algorithm confusion on every endpoint).

Here: tokens not yet valid, claims missing or of the wrong type, tampered headers and payloads, signature
stripping, keys smuggled in the header, leeway bounds, role and tenant games; each is refused (401, or
403 where the token is valid but may not act) by the API and by the dashboard's session, and none of them
creates, changes or reveals a row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from jobkeeper.api.auth import Role
from jobkeeper.dashboard.session import COOKIE
from tests.api.support import (
    SECRET,
    Conn,
    assert_problem,
    bearer,
    claims,
    hmac_signed_with,
    running,
    signed,
)
from tests.fixtures import Tenants, Tokens

JOBS = "/api/v1/queue/jobs"
ADD = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}
LEEWAY = 30  # JOBKEEPER_JWT_LEEWAY's default


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _join(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{signature}"


def tampered(token: str, **changes: Any) -> str:
    """The payload changed after signing; the original signature kept."""
    header, payload, signature = _parts(token)
    return _join(header, payload | changes, signature)


def hs512(payload: dict[str, Any], secret: bytes) -> str:
    """HS512 over the service's own secret (PyJWT warns that it is short for SHA-512, so it is done here)."""
    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha512).digest()
    return f"{header}.{body}.{_b64(signature)}"


def now() -> int:
    return int(time.time())


def _kid_header(t: uuid.UUID) -> dict[str, str]:
    """An attacker's key named in `kid`/`jku` headers: the service ignores them and uses its own key."""
    token = jwt.encode(
        claims(t),
        "attacker-secret-that-is-long-enough-123",
        algorithm="HS256",
        headers={"kid": "../../../../dev/null", "jku": "https://evil.test/jwks.json"},
    )
    return bearer(token)


# Each builds the Authorization header of an attack on tenant `t` (user role unless it says otherwise).
ATTACKS: dict[str, Callable[[uuid.UUID], dict[str, str]]] = {
    "not yet valid (nbf in an hour)": lambda t: bearer(signed(claims(t, nbf=now() + 3600))),
    "not yet valid (nbf past the leeway)": lambda t: bearer(signed(claims(t, nbf=now() + LEEWAY + 60))),
    "issued in the future (iat)": lambda t: bearer(signed(claims(t, iat=now() + 3600))),
    "expired past the leeway": lambda t: bearer(signed(claims(t, exp=now() - LEEWAY - 60))),
    "exp not a number": lambda t: bearer(signed(claims(t, exp="tomorrow"))),
    "nbf not a number": lambda t: bearer(signed(claims(t, nbf="now"))),
    "exp a numeric string": lambda t: bearer(signed(claims(t, exp=str(now() + 3600)))),
    "nbf a numeric string": lambda t: bearer(signed(claims(t, nbf=str(now() - 60)))),
    "iat a numeric string": lambda t: bearer(signed(claims(t, iat=str(now() - 60)))),
    "exp a boolean": lambda t: bearer(signed(claims(t, exp=True))),
    "no aud": lambda t: bearer(signed(claims(t, aud=None))),
    "no iss": lambda t: bearer(signed(claims(t, iss=None))),
    "aud a list without ours": lambda t: bearer(signed(claims(t, aud=["other", "another"]))),
    "iss differing in case": lambda t: bearer(signed(claims(t, iss="HTTPS://ISSUER.TEST"))),
    "sub empty": lambda t: bearer(signed(claims(t, sub=""))),
    "sub not a string": lambda t: bearer(signed(claims(t, sub=42))),
    "tenant_id a number": lambda t: bearer(signed(claims(t, tenant_id=7))),
    "tenant_id a list": lambda t: bearer(signed(claims(t, tenant_id=[str(t)]))),
    "venue_admin without a tenant": lambda t: bearer(signed(claims(t, role="venue_admin", tenant_id=None))),
    "role raised after signing": lambda t: bearer(tampered(signed(claims(t, role="user")), role="admin")),
    "tenant changed after signing": lambda t: bearer(
        tampered(signed(claims(t, role="user")), tenant_id=str(uuid.uuid4()))
    ),
    "exp extended after signing": lambda t: bearer(
        tampered(signed(claims(t, role="user", exp=now() - 3600)), exp=now() + 3600)
    ),
    "signature stripped": lambda t: bearer(signed(claims(t)).rsplit(".", 1)[0] + "."),
    "signature of another token": lambda t: bearer(
        signed(claims(t)).rsplit(".", 1)[0] + "." + signed(claims(t, sub="other")).rsplit(".", 1)[1]
    ),
    "alg None (capitalised)": lambda t: bearer(_join({"alg": "None", "typ": "JWT"}, claims(t), "")),
    "alg NONE with a signature": lambda t: bearer(
        _join({"alg": "NONE", "typ": "JWT"}, claims(t), signed(claims(t)).rsplit(".", 1)[1])
    ),
    "HS512 with the right secret": lambda t: bearer(hs512(claims(t), SECRET.encode())),
    "HS256 with an empty secret": lambda t: bearer(hmac_signed_with(claims(t), b"")),
    "HS256 with a secret one byte short": lambda t: bearer(hmac_signed_with(claims(t), SECRET[:-1].encode())),
    "kid and jku naming the attacker's key": lambda t: _kid_header(t),
    "two tokens glued together": lambda t: bearer(signed(claims(t)) + "." + signed(claims(t))),
    "a token of 9000 characters": lambda t: bearer(signed(claims(t, pad="x" * 9000))),
    "whitespace inside the token": lambda t: bearer(signed(claims(t)).replace(".", " .", 1)),
    "lower-case bearer with garbage": lambda t: {"Authorization": "bearer ..."},
}


async def _jobs_of(owner: Conn, tenant: uuid.UUID) -> int:
    row = await (
        await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE tenant_id = %s", (tenant,))
    ).fetchone()
    assert row is not None
    return int(row[0])


async def test_attack_tokens_are_refused(http: httpx.AsyncClient, tenants: Tenants, owner: Conn) -> None:
    # One database for every attack (a loop, not parameters: a database per case would cost seconds each).
    failures: list[str] = []
    for attack in sorted(ATTACKS):
        headers = ATTACKS[attack](tenants.a)
        for method, path, body in (
            ("GET", JOBS, None),
            ("POST", JOBS, ADD),
            ("POST", JOBS + "/batch", {"jobs": [ADD]}),
            ("POST", "/api/v1/queue/queues/money/pause", None),
            ("GET", "/api/v1/queue/dead-letters", None),
        ):
            response = await http.request(method, path, json=body, headers=headers)
            try:
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
                token = headers.get("Authorization", "").removeprefix("Bearer ")
                assert not token or token[:40] not in response.text, "the token is echoed"
            except AssertionError as exc:
                failures.append(f"{attack}: {method} {path}: {response.status_code} {exc}")
    assert failures == []
    assert await _jobs_of(owner, tenants.a) == 0
    paused = await (
        await owner.execute("SELECT paused FROM jobkeeper.queues WHERE name = 'money'")
    ).fetchone()
    assert paused == (False,)


async def test_attack_tokens_open_no_dashboard_session(http: httpx.AsyncClient, tenants: Tenants) -> None:
    for attack in sorted(ATTACKS):
        token = ATTACKS[attack](tenants.a).get("Authorization", "").removeprefix("Bearer ")
        http.cookies.set(COOKIE, token)
        try:
            page = await http.get("/dashboard/jobs")
            assert page.status_code == 303, (attack, page.text)
            assert "/dashboard/sign-in" in page.headers["location"], attack
            fragment = await http.get("/dashboard/fragments/overview")
            assert fragment.status_code in (303, 401), (attack, fragment.status_code)
        finally:
            http.cookies.clear()


async def test_the_leeway_is_bounded_both_ways(http: httpx.AsyncClient, tenants: Tenants) -> None:
    """Within JOBKEEPER_JWT_LEEWAY a clock skew is forgiven; past it, never."""
    inside = [
        claims(tenants.a, role="user", exp=now() - LEEWAY + 10),
        claims(tenants.a, role="user", nbf=now() + LEEWAY - 10),
    ]
    for payload in inside:
        assert (await http.get(JOBS, headers=bearer(signed(payload)))).status_code == 200
    outside = [
        claims(tenants.a, role="user", exp=now() - LEEWAY - 10),
        claims(tenants.a, role="user", nbf=now() + LEEWAY + 10),
    ]
    for payload in outside:
        assert_problem(await http.get(JOBS, headers=bearer(signed(payload))), 401)


async def test_time_claims_must_be_json_numbers(http: httpx.AsyncClient, tenants: Tenants) -> None:
    """docs/api.md: `"exp": "1796…"` is refused with a reason naming the claim (PyJWT alone accepts it)."""
    for name, value in (("exp", str(now() + 3600)), ("nbf", str(now())), ("iat", str(now()))):
        token = signed(claims(tenants.a, role="user", **{name: value}))
        body = assert_problem(await http.get(JOBS, headers=bearer(token)), 401)
        assert body["detail"] == (
            f"the token's {name!r} claim must be a number (seconds since 1970), not a string"
        )


async def test_an_unknown_role_gets_the_least_rights(
    http: httpx.AsyncClient, tenants: Tenants, owner: Conn
) -> None:
    """`role: superuser`, `role: ADMIN`, a list of roles: a plain caller, refused every admin action."""
    for role in ("superuser", "ADMIN", "Venue_Admin", ["admin"], {"admin": True}, 1, True):
        headers = bearer(signed(claims(tenants.a, role=role)))
        assert (await http.get(JOBS, headers=headers)).status_code == 200, role
        assert_problem(await http.post(JOBS + "/batch", json={"jobs": [ADD]}, headers=headers), 403)
        assert_problem(await http.post("/api/v1/queue/queues/money/pause", headers=headers), 403)
        assert_problem(await http.get(JOBS, params={"tenant_id": str(tenants.b)}, headers=headers), 403)
    assert await _jobs_of(owner, tenants.a) == 0


async def test_a_venue_admin_cannot_reach_another_tenant_by_claims_or_parameters(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    venue_a = tokens.venue_a
    created = await http.post(JOBS, json=ADD, headers=tokens.venue_b)
    assert created.status_code == 201
    job_b = created.json()["id"]
    assert_problem(await http.get(f"{JOBS}/{job_b}", headers=venue_a), 404)
    assert_problem(await http.delete(f"{JOBS}/{job_b}", headers=venue_a), 404)
    assert_problem(
        await http.post(JOBS, json=ADD | {"tenant_id": str(tokens.tenants.b)}, headers=venue_a), 403
    )
    batch = {"jobs": [ADD | {"tenant_id": str(tokens.tenants.b)}]}
    assert_problem(await http.post(JOBS + "/batch", json=batch, headers=venue_a), 403)
    assert_problem(await http.get(JOBS, params={"tenant_id": str(tokens.tenants.b)}, headers=venue_a), 403)
    # The platform role is only ever the verified `role` claim: a tenant admin naming a tenant is refused.
    assert await _jobs_of(owner, tokens.tenants.a) == 0
    row = await (await owner.execute("SELECT status FROM jobkeeper.jobs WHERE id = %s", (job_b,))).fetchone()
    assert row == ("pending",)


def _rsa_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def test_with_a_public_key_hmac_tokens_of_any_secret_are_refused(
    make_app: Callable[..., FastAPI], tenants: Tenants
) -> None:
    """RS256 configured: HS256 signed with the PEM (with and without its trailing newline, or the DER
    bytes), and tokens signed with the service's old HMAC secret, never verify."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = _rsa_pem(private)
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = make_app(jwt_secret=None, jwt_public_key=pem)
    async with running(app) as http:
        good = bearer(signed(claims(tenants.a), key=private, algorithm="RS256"))
        assert (await http.get(JOBS, headers=good)).status_code == 200
        for secret in (pem.encode(), pem.strip().encode(), der, SECRET.encode()):
            forged = bearer(hmac_signed_with(claims(tenants.a), secret))
            assert_problem(await http.get(JOBS, headers=forged), 401)
        assert_problem(await http.get(JOBS, headers=bearer(signed(claims(tenants.a)))), 401)
        # PS256 (RSA-PSS) with the right private key: a different algorithm, refused all the same.
        pss = bearer(signed(claims(tenants.a), key=private, algorithm="PS256"))
        assert_problem(await http.get(JOBS, headers=pss), 401)
        # The right key but claims tampered after signing.
        raised = bearer(
            tampered(signed(claims(tenants.a, role="user"), key=private, algorithm="RS256"), role="admin")
        )
        assert_problem(await http.get(JOBS, headers=raised), 401)


async def test_a_valid_token_still_works(http: httpx.AsyncClient, tokens: Tokens) -> None:
    """The attacks above fail for their flaw, not because every token fails."""
    for role in (Role.USER, Role.VENUE_ADMIN, Role.ADMIN):
        response = await http.get(JOBS, headers=tokens.headers(role))
        assert response.status_code == 200, (role, response.text)
