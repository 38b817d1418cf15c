"""Settings: frozen, validated once, and the only place that reads the environment.

Every setting has one environment variable. A missing or malformed value raises `ConfigError` whose
message names the variable and what it expects; the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from jobkeeper.errors import ConfigError
from jobkeeper.types import DEV_TENANT_ID

log = logging.getLogger(__name__)

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data when `JOBKEEPER_DATA_DIR` is unset.

    As root we stay out of `/root`: the embedded server makes every ancestor of its data dir
    world-traversable (see docs/embedded-postgres.md), which must never happen to a home directory.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/jobkeeper")
    return platformdirs.user_data_path("jobkeeper")


def _env(name: str) -> dict[str, Any]:
    return {"env": name}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = field(default=None, metadata=_env("DATABASE_URL"))
    data_dir: Path = field(default_factory=default_data_dir, metadata=_env("JOBKEEPER_DATA_DIR"))

    pool_min: int = field(default=2, metadata=_env("JOBKEEPER_POOL_MIN"))
    pool_max: int = field(default=10, metadata=_env("JOBKEEPER_POOL_MAX"))
    connect_timeout: float = field(default=10.0, metadata=_env("JOBKEEPER_DB_CONNECT_TIMEOUT"))
    acquire_timeout: float = field(default=30.0, metadata=_env("JOBKEEPER_DB_ACQUIRE_TIMEOUT"))
    idle_timeout: float = field(default=300.0, metadata=_env("JOBKEEPER_DB_IDLE_TIMEOUT"))
    statement_timeout: float = field(default=30.0, metadata=_env("JOBKEEPER_DB_STATEMENT_TIMEOUT"))
    idle_in_transaction_timeout: float = field(
        default=60.0, metadata=_env("JOBKEEPER_DB_IDLE_IN_TRANSACTION_TIMEOUT")
    )
    sslmode: str | None = field(default=None, metadata=_env("JOBKEEPER_DB_SSLMODE"))
    sslrootcert: Path | None = field(default=None, metadata=_env("JOBKEEPER_DB_SSLROOTCERT"))
    sslcert: Path | None = field(default=None, metadata=_env("JOBKEEPER_DB_SSLCERT"))
    sslkey: Path | None = field(default=None, metadata=_env("JOBKEEPER_DB_SSLKEY"))

    default_queue: str = field(default="background", metadata=_env("JOBKEEPER_DEFAULT_QUEUE"))
    default_tenant: uuid.UUID = field(default=DEV_TENANT_ID, metadata=_env("JOBKEEPER_DEFAULT_TENANT"))
    max_payload_bytes: int = field(default=256 * 1024, metadata=_env("JOBKEEPER_MAX_PAYLOAD_BYTES"))
    idempotency_ttl: float = field(default=86400.0, metadata=_env("JOBKEEPER_IDEMPOTENCY_TTL"))
    log_level: str = field(default="INFO", metadata=_env("JOBKEEPER_LOG_LEVEL"))

    def __post_init__(self) -> None:
        if self.pool_min > self.pool_max:
            raise ConfigError(
                f"JOBKEEPER_POOL_MIN ({self.pool_min}) must not exceed JOBKEEPER_POOL_MAX ({self.pool_max})"
            )
        if self.database_url is not None and not self.database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ConfigError(
                "DATABASE_URL must be a PostgreSQL URL starting with postgresql:// "
                f"(got {_redact(self.database_url)!r})"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from `environ` (default: `os.environ`); `overrides` win over it."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        known: list[str] = []
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            known.append(name)
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _PARSERS[f.name](name, raw.strip())
        _warn_unknown(env, known)
        values.update(overrides)
        return cls(**values)

    def connection_kwargs(self) -> dict[str, Any]:
        """libpq keywords added to every connection: timeouts, TLS and session settings."""
        options = [
            f"-c statement_timeout={int(self.statement_timeout * 1000)}",
            f"-c idle_in_transaction_session_timeout={int(self.idle_in_transaction_timeout * 1000)}",
        ]
        kwargs: dict[str, Any] = {
            "connect_timeout": max(1, round(self.connect_timeout)),
            "application_name": "jobkeeper",
            "options": " ".join(options),
        }
        for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = str(value)
        return kwargs


def _redact(url: str) -> str:
    """Hide a password in a URL before it reaches a message or a log line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number ≥ 1, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be a whole number ≥ 1, got {raw!r}")
    return value


def _non_negative_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number ≥ 0, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be a whole number ≥ 0, got {raw!r}")
    return value


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds ≥ 0, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a number of seconds ≥ 0, got {raw!r}")
    return value


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in options:
            hint = difflib.get_close_matches(value, options, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {raw!r}{extra}")
        return value

    return parse


def _existing_file(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must name a readable file, but {raw!r} does not exist")
    return path


def _directory(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} must be a directory, but {raw!r} is a file")
    return path.resolve()


def _uuid(name: str, raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a UUID such as {DEV_TENANT_ID}, got {raw!r}") from None


def _url(name: str, raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{name} must be a PostgreSQL URL starting with postgresql://, got {_redact(raw)!r}"
        )
    return raw


def _queue_name(name: str, raw: str) -> str:
    return raw


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "database_url": _url,
    "data_dir": _directory,
    "pool_min": _non_negative_int,
    "pool_max": _positive_int,
    "connect_timeout": _seconds,
    "acquire_timeout": _seconds,
    "idle_timeout": _seconds,
    "statement_timeout": _seconds,
    "idle_in_transaction_timeout": _seconds,
    "sslmode": _choice(SSL_MODES),
    "sslrootcert": _existing_file,
    "sslcert": _existing_file,
    "sslkey": _existing_file,
    "default_queue": _queue_name,
    "default_tenant": _uuid,
    "max_payload_bytes": _positive_int,
    "idempotency_ttl": _seconds,
    "log_level": _choice(LOG_LEVELS, upper=True),
}

# Variables read by other parts (tests, the embedded server) that are not settings of the service.
_NOT_SETTINGS = {"JOBKEEPER_TEST_DATABASE_URL"}


def _warn_unknown(env: Mapping[str, str], known: list[str]) -> None:
    for name in env:
        if name.startswith("JOBKEEPER_") and name not in known and name not in _NOT_SETTINGS:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            log.warning("ignoring unknown setting %s%s", name, hint)
