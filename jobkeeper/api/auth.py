"""Bearer JWT authentication and roles (docs/api.md#authentication).

The key decides the one algorithm accepted: an HMAC secret of at least 32 bytes means HS256; an RSA public
key RS256; an EC P-256 public key ES256. `none` and every other algorithm are refused, so a token signed
with the public key as an HMAC secret (algorithm confusion) never verifies. `exp`, `aud`, `iss` and `sub`
are required; the tenant comes only from the verified `tenant_id` claim and the role from `role`.
Without a key, an audience and an issuer there is no `AuthConfig`: the API refuses to start.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobkeeper.api import problems
from jobkeeper.config import MIN_JWT_SECRET_BYTES, Settings
from jobkeeper.errors import ConfigError

TENANT_CLAIM = "tenant_id"
ROLE_CLAIM = "role"
MIN_RSA_BITS = 2048
MAX_TOKEN_LENGTH = 8192


class Role(StrEnum):
    ADMIN = "admin"
    """Platform administrator: every tenant, shared queues, caches."""
    VENUE_ADMIN = "venue_admin"
    """Administers its own tenant: retries, cancels, batches, dead letters, schedules, alerts."""
    USER = "user"
    """Any other authenticated caller: enqueues and reads its own tenant's jobs."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant_id: uuid.UUID
    role: Role

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_tenant_admin(self) -> bool:
        return self.role in (Role.ADMIN, Role.VENUE_ADMIN)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    key: Any
    """The HMAC secret (bytes) or the public key object."""
    algorithm: str
    audience: str
    issuer: str
    leeway: float

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        """The verification setup, or `ConfigError` naming what is missing (there is no fallback)."""
        secret, public = settings.jwt_secret, settings.jwt_public_key
        if secret is None and public is None:
            raise ConfigError(
                "the API needs authentication configured: set JOBKEEPER_JWT_SECRET (HS256, at least "
                f"{MIN_JWT_SECRET_BYTES} bytes) or JOBKEEPER_JWT_PUBLIC_KEY (RS256/ES256 PEM), plus "
                "JOBKEEPER_JWT_AUDIENCE and JOBKEEPER_JWT_ISSUER"
            )
        if secret is not None and public is not None:
            raise ConfigError(
                "set only one of JOBKEEPER_JWT_SECRET and JOBKEEPER_JWT_PUBLIC_KEY: the key decides the "
                "one algorithm accepted"
            )
        missing = [
            name
            for name, value in (
                ("JOBKEEPER_JWT_AUDIENCE", settings.jwt_audience),
                ("JOBKEEPER_JWT_ISSUER", settings.jwt_issuer),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"the API needs {' and '.join(missing)} set: tokens are checked against them")
        assert settings.jwt_audience is not None
        assert settings.jwt_issuer is not None
        if secret is not None:
            key: Any = secret.encode("utf-8")
            if len(key) < MIN_JWT_SECRET_BYTES:
                raise ConfigError(
                    f"JOBKEEPER_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes (got {len(key)})"
                )
            algorithm = "HS256"
        else:
            assert public is not None
            key, algorithm = _public_key(public)
        return cls(key, algorithm, settings.jwt_audience, settings.jwt_issuer, settings.jwt_leeway)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; a 401 problem otherwise (the reason, never the token)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise problems.invalid_token("the token is too long")
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "aud", "iss", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise problems.invalid_token("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise problems.invalid_token("the token is not meant for this service (audience)") from None
        except jwt.InvalidIssuerError:
            raise problems.invalid_token("the token was not issued by the configured issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise problems.invalid_token(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise problems.invalid_token(f"the token must be signed with {self.algorithm}") from None
        except jwt.InvalidSignatureError:
            raise problems.invalid_token("the token's signature does not verify") from None
        except jwt.PyJWTError:
            raise problems.invalid_token("the token is malformed or not valid") from None
        _check_time_claims(claims)
        return _principal(claims)


def _public_key(pem: str) -> tuple[Any, str]:
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except ValueError:
        raise ConfigError("JOBKEEPER_JWT_PUBLIC_KEY is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"JOBKEEPER_JWT_PUBLIC_KEY is a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits"
            )
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(
                f"JOBKEEPER_JWT_PUBLIC_KEY is an EC key on {key.curve.name}; ES256 needs P-256 (secp256r1)"
            )
        return key, "ES256"
    raise ConfigError("JOBKEEPER_JWT_PUBLIC_KEY must be an RSA (RS256) or EC P-256 (ES256) public key")


TIME_CLAIMS = ("exp", "nbf", "iat")
_JSON_KINDS = {str: "a string", bool: "a boolean", list: "an array", dict: "an object", type(None): "null"}


def _check_time_claims(claims: dict[str, Any]) -> None:
    """RFC 7519 NumericDate is a JSON number: PyJWT converts `"1796…"` (a string) with int() and would
    accept it, so the types are checked here (a boolean is no number either)."""
    for name in TIME_CLAIMS:
        if name in claims:
            value = claims[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                found = _JSON_KINDS.get(type(value), "another type")
                raise problems.invalid_token(
                    f"the token's {name!r} claim must be a number (seconds since 1970), not {found}"
                )


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise problems.invalid_token("the token's 'sub' claim must be a non-empty string")
    raw_tenant = claims.get(TENANT_CLAIM)
    if not isinstance(raw_tenant, str):
        raise problems.invalid_token(f"the token lacks the {TENANT_CLAIM!r} claim (a UUID)")
    try:
        tenant = uuid.UUID(raw_tenant)
    except ValueError:
        raise problems.invalid_token(f"the token's {TENANT_CLAIM!r} claim is not a UUID") from None
    raw_role = claims.get(ROLE_CLAIM)
    role = Role(raw_role) if raw_role in (Role.ADMIN, Role.VENUE_ADMIN) else Role.USER
    return Principal(subject=subject, tenant_id=tenant, role=role)


def mint_token(
    settings: Settings, *, role: Role, tenant_id: uuid.UUID, subject: str, ttl_seconds: int
) -> str:
    """A token for development, signed with the configured HMAC secret."""
    config = AuthConfig.from_settings(settings)
    if config.algorithm != "HS256":
        raise ConfigError(
            "tokens can only be minted with JOBKEEPER_JWT_SECRET; with a public key, tokens come from "
            "the identity provider that holds the private key"
        )
    if ttl_seconds < 1:
        raise ConfigError(f"the token lifetime must be at least 1 second, got {ttl_seconds}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "aud": config.audience,
        "iss": config.issuer,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        TENANT_CLAIM: str(tenant_id),
        ROLE_CLAIM: role.value,
    }
    return jwt.encode(claims, config.key, algorithm="HS256")


# FastAPI dependencies ------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`")


def _config(request: Request) -> AuthConfig:
    config: AuthConfig = request.app.state.auth
    return config


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        header = request.headers.get("authorization")
        if header:
            raise problems.invalid_token("the Authorization header must be `Bearer <token>`")
        raise problems.unauthorized("this endpoint needs a bearer token")
    principal = _config(request).verify(credentials.credentials)
    request.state.principal = principal
    return principal


async def require_tenant_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.is_tenant_admin:
        raise problems.forbidden("this needs the admin or venue_admin role")
    return principal


async def require_platform_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.is_platform_admin:
        raise problems.forbidden("this needs the admin role (platform administrator)")
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
"""Any authenticated caller."""
TenantAdmin = Annotated[Principal, Depends(require_tenant_admin)]
"""`admin` or `venue_admin`."""
PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
"""`admin` only."""
