"""Settings: frozen, validated once, and the only place that reads the environment.

Every setting has one environment variable, declared once with its parser (`jobkeeper.environment`). A
missing or malformed value raises `ConfigError` whose message names the variable and what it expects;
the CLI prints that one line and exits 2. `Settings` composes sections: the service's own below, each
built-in processor's beside the processors (`jobkeeper.processors.settings`), maintenance's in
`jobkeeper.maintenance.settings` (docs/decisions.md, "Settings").
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from jobkeeper.environment import (
    Parser,
    boolean,
    choice,
    directory,
    existing_file,
    host,
    names,
    port,
    positive_seconds,
    seconds,
    section,
    setting,
    tenant_id,
    text,
    whole,
    writable_file,
)
from jobkeeper.errors import ConfigError, did_you_mean
from jobkeeper.maintenance.settings import MaintenanceSettings
from jobkeeper.processors.settings.analytics import AnalyticsSettings
from jobkeeper.processors.settings.cleanup import RetentionSettings
from jobkeeper.processors.settings.delivery import DeliverySettings
from jobkeeper.processors.settings.email import EmailSettings
from jobkeeper.processors.settings.nft import SolanaSettings
from jobkeeper.processors.settings.payments import StripeSettings
from jobkeeper.processors.settings.push import PushSettings
from jobkeeper.processors.settings.reports import ReportSettings
from jobkeeper.processors.settings.sms import SmsSettings
from jobkeeper.types import DEV_TENANT_ID

log = logging.getLogger(__name__)

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("auto", "json", "console")
MIN_JWT_SECRET_BYTES = 32
MIN_METRICS_TOKEN_BYTES = 16


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data when `JOBKEEPER_DATA_DIR` is unset.

    Run from a checkout (the package beside a `pyproject.toml` and `.git`): the clone's own
    `.jobkeeper/data`, so that two clones never share a database and `make clean` removes it. Otherwise
    the user data dir, or `/var/lib/jobkeeper` as root. As root we stay out of home directories (a
    checkout under `/root` included): the embedded server makes every ancestor of its data dir
    world-traversable (see docs/embedded-postgres.md), so such a clone gets its own directory under
    `/var/lib/jobkeeper/checkouts/`.
    """
    root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
    checkout = checkout_dir()
    if checkout is not None:
        if not root or not checkout.is_relative_to(Path.home()):
            return checkout / ".jobkeeper" / "data"
        digest = hashlib.sha256(str(checkout).encode()).hexdigest()[:12]
        return Path("/var/lib/jobkeeper/checkouts") / f"{checkout.name}-{digest}"
    if root:
        return Path("/var/lib/jobkeeper")
    return platformdirs.user_data_path("jobkeeper")


def checkout_dir() -> Path | None:
    """The source checkout this package runs from, or None for an installed package."""
    top = Path(__file__).resolve().parent.parent
    return top if (top / "pyproject.toml").is_file() and (top / ".git").exists() else None


def _redact(url: str) -> str:
    """Hide a password in a URL before it reaches a message or a log line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def postgres_url(name: str, raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{name} must be a PostgreSQL URL starting with postgresql://, got {_redact(raw)!r}"
        )
    return raw


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def modules(name: str, raw: str) -> tuple[str, ...]:
    found = names(name, raw)
    for module in found:
        if not _MODULE.match(module):
            raise ConfigError(
                f"{name} must list importable module names separated by commas (e.g. myapp.tasks), "
                f"got {module!r}"
            )
    return found


def jwt_secret(name: str, raw: str) -> str:
    # The message never repeats the secret.
    size = len(raw.encode("utf-8"))
    if size < MIN_JWT_SECRET_BYTES:
        raise ConfigError(
            f"{name} must be at least {MIN_JWT_SECRET_BYTES} bytes (got {size}); generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    return raw


def pem_public_key(name: str, raw: str) -> str:
    """PEM text as given, or read from the file the value names. The key itself is checked by the API."""
    if raw.startswith("-----BEGIN"):
        return raw.replace("\\n", "\n")
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must be a PEM public key or the path of a PEM file; {raw!r} is neither")
    return path.read_text(encoding="utf-8")


def proxies(name: str, raw: str) -> tuple[str, ...]:
    entries = names(name, raw)
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"{name} must list IP addresses or networks separated by commas (e.g. 10.0.0.5,10.1.0.0/16) "
                f"or be *, got {entry!r}"
            ) from None
    return entries


def scrape_token(name: str, raw: str) -> str:
    # The message never repeats the token.
    if len(raw.encode("utf-8")) < MIN_METRICS_TOKEN_BYTES or any(ch.isspace() for ch in raw):
        raise ConfigError(
            f"{name} must be at least {MIN_METRICS_TOKEN_BYTES} bytes without spaces; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return raw


@section
class DatabaseSettings:
    database_url: str | None = setting("DATABASE_URL", postgres_url, default=None)
    data_dir: Path = setting("JOBKEEPER_DATA_DIR", directory, default_factory=default_data_dir)

    pool_min: int = setting("JOBKEEPER_POOL_MIN", whole(0), default=2)
    pool_max: int = setting("JOBKEEPER_POOL_MAX", whole(1), default=10)
    connect_timeout: float = setting("JOBKEEPER_DB_CONNECT_TIMEOUT", seconds, default=10.0)
    acquire_timeout: float = setting("JOBKEEPER_DB_ACQUIRE_TIMEOUT", seconds, default=30.0)
    idle_timeout: float = setting("JOBKEEPER_DB_IDLE_TIMEOUT", seconds, default=300.0)
    statement_timeout: float = setting("JOBKEEPER_DB_STATEMENT_TIMEOUT", seconds, default=30.0)
    idle_in_transaction_timeout: float = setting(
        "JOBKEEPER_DB_IDLE_IN_TRANSACTION_TIMEOUT", seconds, default=60.0
    )
    sslmode: str | None = setting("JOBKEEPER_DB_SSLMODE", choice(SSL_MODES), default=None)
    sslrootcert: Path | None = setting("JOBKEEPER_DB_SSLROOTCERT", existing_file, default=None)
    sslcert: Path | None = setting("JOBKEEPER_DB_SSLCERT", existing_file, default=None)
    sslkey: Path | None = setting("JOBKEEPER_DB_SSLKEY", existing_file, default=None)
    prepared_statements: bool = setting("JOBKEEPER_DB_PREPARED_STATEMENTS", boolean, default=True)
    """psycopg prepares a statement run 5 times on a connection; `false` never prepares (PgBouncer in
    transaction mode before 1.21 loses them: docs/howto/pgbouncer.md)."""


@section
class JobSettings:
    default_queue: str = setting("JOBKEEPER_DEFAULT_QUEUE", text, default="background")
    default_tenant: uuid.UUID = setting("JOBKEEPER_DEFAULT_TENANT", tenant_id, default=DEV_TENANT_ID)
    max_payload_bytes: int = setting("JOBKEEPER_MAX_PAYLOAD_BYTES", whole(1), default=256 * 1024)
    idempotency_ttl: float = setting("JOBKEEPER_IDEMPOTENCY_TTL", seconds, default=86400.0)
    allow_unknown_types: bool = setting("JOBKEEPER_ALLOW_UNKNOWN_TYPES", boolean, default=False)
    """Enqueue any job type; by default a type must be built in, registered by a worker or declared."""


@section
class LogSettings:
    log_level: str = setting("JOBKEEPER_LOG_LEVEL", choice(LOG_LEVELS, upper=True), default="INFO")
    log_format: str = setting("JOBKEEPER_LOG_FORMAT", choice(LOG_FORMATS), default="auto")
    """`json` (one object per line), `console` (readable) or `auto` (console on a terminal, else json)."""
    log_file: Path | None = setting("JOBKEEPER_LOG_FILE", writable_file, default=None)
    """Also write JSON lines to this file, rotated by size; `jobkeeper up` gives each child its own file."""
    log_file_max_bytes: int = setting("JOBKEEPER_LOG_FILE_MAX_BYTES", whole(1), default=10 * 1024 * 1024)
    """Size at which the log file is rotated (renamed to `FILE.1`, …)."""
    log_file_backups: int = setting("JOBKEEPER_LOG_FILE_BACKUPS", whole(1), default=5)
    """Rotated log files kept (at least 1: Python's rotating handler never rotates with 0)."""


@section
class WorkerSettings:
    """The worker (`jobkeeper worker`): which modules register handlers, its capacity and its timing."""

    imports: tuple[str, ...] = setting("JOBKEEPER_IMPORTS", modules, default=())
    """Modules imported by `jobkeeper worker` so that their `@task` handlers register (comma-separated)."""
    worker_queues: tuple[str, ...] = setting("JOBKEEPER_WORKER_QUEUES", names, default=())
    """Queues a worker serves (comma-separated); empty means every queue."""
    worker_concurrency: int = setting("JOBKEEPER_WORKER_CONCURRENCY", whole(1), default=100)
    worker_batch_size: int = setting("JOBKEEPER_WORKER_BATCH_SIZE", whole(1), default=50)
    worker_claims_in_flight: int = setting("JOBKEEPER_WORKER_CLAIMS_IN_FLIGHT", whole(1), default=2)
    """Claim statements a worker keeps running at once, each on a connection of its own."""
    poll_interval: float = setting("JOBKEEPER_POLL_INTERVAL", positive_seconds, default=1.0)
    """Seconds between claims of an idle worker when no notification arrives."""
    shutdown_timeout: float = setting("JOBKEEPER_SHUTDOWN_TIMEOUT", seconds, default=30.0)
    """Seconds a stopping worker lets running jobs finish before returning them to pending."""
    lease_seconds: float = setting("JOBKEEPER_LEASE_SECONDS", positive_seconds, default=30.0)
    """A running job whose heartbeat is older than this (database clock) is considered lost."""
    heartbeat_interval: float | None = setting("JOBKEEPER_HEARTBEAT_INTERVAL", positive_seconds, default=None)
    """Seconds between heartbeats; default a third of the lease."""


@section
class ApiSettings:
    """The HTTP API (`jobkeeper api`, `jobkeeper up`): where it listens, how callers authenticate, its
    limits. No default key: without JOBKEEPER_JWT_SECRET or JOBKEEPER_JWT_PUBLIC_KEY the API refuses to
    start."""

    host: str = setting("JOBKEEPER_HOST", host, default="127.0.0.1")
    port: int = setting("JOBKEEPER_PORT", port, default=3011)
    jwt_secret: str | None = setting("JOBKEEPER_JWT_SECRET", jwt_secret, default=None, secret=True)
    """HMAC secret (HS256) of at least 32 bytes; never printed."""
    jwt_public_key: str | None = setting(
        "JOBKEEPER_JWT_PUBLIC_KEY", pem_public_key, default=None, secret=True
    )
    """PEM public key (RSA: RS256, EC P-256: ES256), given as PEM text or as the path of a PEM file."""
    jwt_audience: str | None = setting("JOBKEEPER_JWT_AUDIENCE", text, default=None)
    jwt_issuer: str | None = setting("JOBKEEPER_JWT_ISSUER", text, default=None)
    jwt_leeway: float = setting("JOBKEEPER_JWT_LEEWAY", seconds, default=30.0)
    """Seconds of clock skew tolerated on exp/nbf/iat."""
    trusted_proxies: tuple[str, ...] = setting("JOBKEEPER_TRUSTED_PROXIES", proxies, default=())
    """Addresses (IPs or CIDR networks, comma-separated; `*`: any) of reverse proxies whose
    X-Forwarded-Proto and X-Forwarded-For are believed, as uvicorn's `forwarded_allow_ips`; empty: none."""
    session_cookie_secure: bool = setting("JOBKEEPER_SESSION_COOKIE_SECURE", boolean, default=False)
    """Always mark the dashboard's cookies `Secure` (otherwise: when the request came over https)."""
    api_rate_per_second: float = setting("JOBKEEPER_API_RATE_PER_SECOND", positive_seconds, default=100.0)
    """Jobs per second a principal may create through the API (token bucket refill, shared by processes)."""
    api_rate_burst: int = setting("JOBKEEPER_API_RATE_BURST", whole(1), default=500)
    """Bucket size: jobs a principal may create at once; at least the batch maximum (100)."""
    api_max_body_bytes: int = setting("JOBKEEPER_API_MAX_BODY_BYTES", whole(1), default=4 * 1024 * 1024)
    api_acquire_timeout: float = setting("JOBKEEPER_API_ACQUIRE_TIMEOUT", positive_seconds, default=5.0)
    """Seconds a request waits for a database connection before answering 503."""
    api_stats_cache_ttl: float = setting("JOBKEEPER_API_STATS_CACHE_TTL", seconds, default=2.0)
    ready_worker_max_age: float = setting("JOBKEEPER_READY_WORKER_MAX_AGE", positive_seconds, default=60.0)
    """Readiness needs a worker heartbeat at most this many seconds old."""
    metrics_window: float = setting("JOBKEEPER_METRICS_WINDOW", positive_seconds, default=300.0)
    """Seconds of history behind the metrics computed from the database (durations, results)."""
    metrics_token: str | None = setting("JOBKEEPER_METRICS_TOKEN", scrape_token, default=None, secret=True)
    """Bearer token a scraper sends to /metrics (at least 16 bytes; never printed): with it set, a scrape
    without it answers 401; unset, /metrics is public and shows no tenant's own queue or type name."""


@section
class ScheduleSettings:
    """Cron schedules: how many a tenant may have, how often they may fire, the scheduler's work per tick."""

    schedules_per_tenant: int = setting("JOBKEEPER_SCHEDULES_PER_TENANT", whole(1), default=100)
    """Most schedules (active or paused) one tenant may have."""
    schedule_min_interval: float = setting("JOBKEEPER_SCHEDULE_MIN_INTERVAL", seconds, default=60.0)
    """Seconds a schedule's slots must be apart at least; platform admins are exempt, 0 turns it off."""
    scheduler_max_fires: int = setting("JOBKEEPER_SCHEDULER_MAX_FIRES", whole(1), default=100)
    """Most jobs the scheduler enqueues per tick (1 s), shared round-robin between tenants."""


@dataclasses.dataclass(frozen=True)
class Settings(
    # Fields are ordered from the last base to the first; the service's own come first.
    ReportSettings,
    RetentionSettings,
    AnalyticsSettings,
    PushSettings,
    SmsSettings,
    EmailSettings,
    DeliverySettings,
    SolanaSettings,
    StripeSettings,
    MaintenanceSettings,
    ScheduleSettings,
    ApiSettings,
    WorkerSettings,
    LogSettings,
    JobSettings,
    DatabaseSettings,
):
    """Every setting of the service; change one with `dataclasses.replace`, which checks it again."""

    @property
    def heartbeat_every(self) -> float:
        return self.heartbeat_interval if self.heartbeat_interval is not None else self.lease_seconds / 3

    def __post_init__(self) -> None:
        if self.poll_interval <= 0 or self.lease_seconds <= 0:
            raise ConfigError(
                "JOBKEEPER_POLL_INTERVAL and JOBKEEPER_LEASE_SECONDS must be more than 0 seconds"
            )
        if self.heartbeat_interval is not None and not 0 < self.heartbeat_interval < self.lease_seconds:
            raise ConfigError(
                f"JOBKEEPER_HEARTBEAT_INTERVAL ({self.heartbeat_interval}) must be more than 0 and less than "
                f"JOBKEEPER_LEASE_SECONDS ({self.lease_seconds}), or a running job would look lost"
            )
        if self.worker_concurrency < 1 or self.worker_batch_size < 1:
            raise ConfigError(
                "JOBKEEPER_WORKER_CONCURRENCY and JOBKEEPER_WORKER_BATCH_SIZE must be at least 1"
            )
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
        # One pass over the environment (shorter than the settings): each variable is a setting, ignored,
        # or an unknown JOBKEEPER_* one that is warned about.
        for name, raw in env.items():
            declared = _BY_VARIABLE.get(name)
            if declared is None:
                if name.startswith("JOBKEEPER_") and name not in _NOT_SETTINGS:
                    hint = did_you_mean(name, _VARIABLES, "; did you mean {}?")
                    log.warning("ignoring unknown setting %s%s", name, hint)
                continue
            value = raw.strip()
            if value:
                values[declared[0]] = declared[1](name, value)
        values.update(overrides)
        return cls(**values)

    def connection_kwargs(self) -> dict[str, Any]:
        """Keywords of every `psycopg.connect`: libpq timeouts, TLS and session settings, and whether to
        prepare statements."""
        options = [
            f"-c statement_timeout={int(self.statement_timeout * 1000)}",
            f"-c idle_in_transaction_session_timeout={int(self.idle_in_transaction_timeout * 1000)}",
            # JIT off: the service's statements are short, and a misestimated one can spend far longer
            # compiling than running (docs/benchmarks.md#jit-off).
            "-c jit=off",
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
        if not self.prepared_statements:
            kwargs["prepare_threshold"] = None  # a psycopg connection option, not a libpq keyword
        return kwargs


def parse_option(name: str, option: str, raw: str) -> Any:
    """A command-line option's value parsed as the setting `name` (the field name) would be: the same
    checks, with errors naming the option (`--trusted-proxies`) instead of the variable."""
    parse: Parser = _FIELDS[name].metadata["parse"]
    return parse(option, raw.strip())


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_BY_VARIABLE: dict[str, tuple[str, Parser]] = {
    f.metadata["env"]: (f.name, f.metadata["parse"]) for f in _FIELDS.values()
}
_VARIABLES = list(_BY_VARIABLE)
if len(_BY_VARIABLE) != len(_FIELDS):  # two sections declared the same variable
    raise RuntimeError("a settings variable is declared twice")

# Variables read by other parts (tests, the embedded server) that are not settings of the service.
_NOT_SETTINGS = {"JOBKEEPER_TEST_DATABASE_URL"}
