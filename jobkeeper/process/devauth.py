"""Authentication for the embedded development mode of `jobkeeper up`, and only for it.

With no DATABASE_URL and no JWT settings, `up` keeps a random HS256 secret in the data dir (mode 0600)
and prints an admin token, so a newcomer can call the API at once. With DATABASE_URL set this never
happens: a real deployment must configure its own keys (the API refuses to start without them).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError

KEY_FILE = "dev-jwt-secret"
DEV_AUDIENCE = "jobkeeper"
DEV_ISSUER = "jobkeeper-dev"


def needs_dev_auth(settings: Settings) -> bool:
    return settings.database_url is None and settings.jwt_secret is None and settings.jwt_public_key is None


def dev_auth(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """Settings with the development secret filled in, and the variables that pass it to children."""
    path = Path(settings.data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return _with_secret(settings, path.read_text().strip())


def existing_dev_auth(settings: Settings) -> Settings:
    """The settings of the embedded development setup `up` made (its secret, audience and issuer), for
    commands run beside it such as `jobkeeper token`. Never creates a secret: a token signed with a key
    no API uses would only fail later."""
    path = Path(settings.data_dir) / KEY_FILE
    if not path.is_file():
        raise ConfigError(
            f"no signing secret: set JOBKEEPER_JWT_SECRET, JOBKEEPER_JWT_AUDIENCE and JOBKEEPER_JWT_ISSUER "
            f"as the API has them, or start `jobkeeper up` (its development secret, {path}, is then used)"
        )
    return _with_secret(settings, path.read_text().strip())[0]


def _with_secret(settings: Settings, secret: str) -> tuple[Settings, dict[str, str]]:
    audience = settings.jwt_audience or DEV_AUDIENCE
    issuer = settings.jwt_issuer or DEV_ISSUER
    env = {"JOBKEEPER_JWT_SECRET": secret, "JOBKEEPER_JWT_AUDIENCE": audience, "JOBKEEPER_JWT_ISSUER": issuer}
    return dataclasses.replace(settings, jwt_secret=secret, jwt_audience=audience, jwt_issuer=issuer), env
