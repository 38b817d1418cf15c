"""Authentication and roles on every endpoint: 401 for every kind of bad token, 403 for the wrong role."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from jobkeeper.api.auth import Role
from tests.api.endpoints import ENDPOINTS, PROTECTED, Endpoint
from tests.api.support import (
    Conn,
    assert_problem,
    bearer,
    claims,
    create_tenant,
    hmac_signed_with,
    running,
    signed,
    unsigned,
)
from tests.fixtures import Tenants, Tokens

BAD_TOKENS: dict[str, Callable[[uuid.UUID], dict[str, str]]] = {
    "no token": lambda t: {},
    "not a bearer token": lambda t: {"Authorization": "Basic dXNlcjpwYXNz"},
    "garbage": lambda t: bearer("not.a.token"),
    "bad signature": lambda t: bearer(signed(claims(t), key="another-secret-that-is-long-enough-1234")),
    "alg none": lambda t: bearer(unsigned(claims(t))),
    "expired": lambda t: bearer(signed(claims(t, exp=int(time.time()) - 3600))),
    "wrong audience": lambda t: bearer(signed(claims(t, aud="another-service"))),
    "wrong issuer": lambda t: bearer(signed(claims(t, iss="https://evil.test"))),
    "no exp": lambda t: bearer(signed(claims(t, exp=None))),
    "no subject": lambda t: bearer(signed(claims(t, sub=None))),
    "no tenant": lambda t: bearer(signed(claims(t, tenant_id=None))),
    "tenant not a uuid": lambda t: bearer(signed(claims(t, tenant_id="acme"))),
    "HS384 instead of HS256": lambda t: bearer(signed(claims(t), algorithm="HS384")),
}


def test_every_route_is_listed(app: FastAPI) -> None:
    declared = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    listed = {(e.method, e.template) for e in ENDPOINTS}
    assert declared == listed


async def _request(http: httpx.AsyncClient, endpoint: Endpoint, headers: dict[str, str]) -> httpx.Response:
    return await http.request(endpoint.method, endpoint.path, json=endpoint.body, headers=headers)


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_bad_tokens_are_refused_by_every_protected_endpoint(
    http: httpx.AsyncClient, tenants: Tenants, kind: str
) -> None:
    headers = BAD_TOKENS[kind](tenants.a)
    for endpoint in PROTECTED:
        response = await _request(http, endpoint, headers)
        assert response.status_code == 401, (str(endpoint), response.text)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer"), str(endpoint)


async def test_public_endpoints_need_no_token(http: httpx.AsyncClient) -> None:
    for endpoint in ENDPOINTS:
        if endpoint.role is None:
            response = await _request(http, endpoint, {})
            assert response.status_code in (200, 503), (str(endpoint), response.text)


async def test_wrong_role_is_forbidden(http: httpx.AsyncClient, tokens: Tokens) -> None:
    for endpoint in PROTECTED:
        if endpoint.role is Role.VENUE_ADMIN:
            callers = [tokens.user_a]
        elif endpoint.role is Role.ADMIN:
            callers = [tokens.user_a, tokens.venue_a]
        else:
            continue
        for headers in callers:
            response = await _request(http, endpoint, headers)
            assert_problem(response, 403)


async def test_an_unknown_role_claim_is_a_plain_caller(http: httpx.AsyncClient, tenants: Tenants) -> None:
    headers = bearer(signed(claims(tenants.a, role="superuser")))
    assert (await http.get("/api/v1/queue/jobs", headers=headers)).status_code == 200
    assert_problem(await http.post("/api/v1/queue/queues/money/pause", headers=headers), 403)


async def test_role_admin_passes_every_role_check(http: httpx.AsyncClient, tokens: Tokens) -> None:
    for endpoint in PROTECTED:
        response = await _request(http, endpoint, tokens.admin)
        assert response.status_code not in (401, 403), (str(endpoint), response.text)


async def test_a_tenant_that_is_not_registered_or_deactivated_is_refused(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    unknown = tokens.headers(Role.USER, uuid.uuid4())
    body = assert_problem(await http.get("/api/v1/queue/jobs", headers=unknown), 403)
    assert "not registered" in body["detail"]
    dormant = await create_tenant(owner, "dormant", active=False)
    body = assert_problem(
        await http.get("/api/v1/queue/queues", headers=tokens.headers(Role.USER, dormant)), 403
    )
    assert "deactivated" in body["detail"]
    add = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}
    response = await http.post("/api/v1/queue/jobs", json=add, headers=tokens.headers(Role.USER, dormant))
    assert_problem(response, 403)
    count = await (
        await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE tenant_id = %s", (dormant,))
    ).fetchone()
    assert count == (0,)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_public_key_configuration_accepts_only_its_algorithm(
    make_app: Callable[..., FastAPI], tenants: Tenants, algorithm: str
) -> None:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    public_pem = _pem(private)
    app = make_app(jwt_secret=None, jwt_public_key=public_pem)
    async with running(app) as http:
        good = bearer(signed(claims(tenants.a), key=private, algorithm=algorithm))
        assert (await http.get("/api/v1/queue/queues", headers=good)).status_code == 200
        # Algorithm confusion: the public key (which is public) used as an HMAC secret.
        forged = bearer(hmac_signed_with(claims(tenants.a), public_pem.encode()))
        assert_problem(await http.get("/api/v1/queue/queues", headers=forged), 401)
        assert_problem(
            await http.get("/api/v1/queue/queues", headers=bearer(unsigned(claims(tenants.a)))), 401
        )
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256":
            wrong_key = bearer(signed(claims(tenants.a), key=other, algorithm="RS256"))
            assert_problem(await http.get("/api/v1/queue/queues", headers=wrong_key), 401)
