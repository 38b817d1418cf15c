"""Settings: frozen, validated once, and the only place that reads the environment.

Every setting has one environment variable. A missing or malformed value raises `ConfigError` whose
message names the variable and what it expects; the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import logging
import os
import re
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
LOG_FORMATS = ("auto", "json", "console")


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
    prepared_statements: bool = field(default=True, metadata=_env("JOBKEEPER_DB_PREPARED_STATEMENTS"))
    """psycopg prepares a statement run 5 times on a connection; `false` never prepares (PgBouncer in
    transaction mode before 1.21 loses them: docs/howto/pgbouncer.md)."""

    default_queue: str = field(default="background", metadata=_env("JOBKEEPER_DEFAULT_QUEUE"))
    default_tenant: uuid.UUID = field(default=DEV_TENANT_ID, metadata=_env("JOBKEEPER_DEFAULT_TENANT"))
    max_payload_bytes: int = field(default=256 * 1024, metadata=_env("JOBKEEPER_MAX_PAYLOAD_BYTES"))
    idempotency_ttl: float = field(default=86400.0, metadata=_env("JOBKEEPER_IDEMPOTENCY_TTL"))
    allow_unknown_types: bool = field(default=False, metadata=_env("JOBKEEPER_ALLOW_UNKNOWN_TYPES"))
    """Enqueue any job type; by default a type must be built in, registered by a worker or declared."""
    log_level: str = field(default="INFO", metadata=_env("JOBKEEPER_LOG_LEVEL"))
    log_format: str = field(default="auto", metadata=_env("JOBKEEPER_LOG_FORMAT"))
    """`json` (one object per line), `console` (readable) or `auto` (console on a terminal, else json)."""
    log_file: Path | None = field(default=None, metadata=_env("JOBKEEPER_LOG_FILE"))
    """Also write JSON lines to this file, rotated by size; `jobkeeper up` gives each child its own file."""
    log_file_max_bytes: int = field(default=10 * 1024 * 1024, metadata=_env("JOBKEEPER_LOG_FILE_MAX_BYTES"))
    """Size at which the log file is rotated (renamed to `FILE.1`, …)."""
    log_file_backups: int = field(default=5, metadata=_env("JOBKEEPER_LOG_FILE_BACKUPS"))
    """Rotated log files kept (at least 1: Python's rotating handler never rotates with 0)."""

    # The worker (`jobkeeper worker`): which modules register handlers, its capacity and its timing.
    imports: tuple[str, ...] = field(default=(), metadata=_env("JOBKEEPER_IMPORTS"))
    """Modules imported by `jobkeeper worker` so that their `@task` handlers register (comma-separated)."""
    worker_queues: tuple[str, ...] = field(default=(), metadata=_env("JOBKEEPER_WORKER_QUEUES"))
    """Queues a worker serves (comma-separated); empty means every queue."""
    worker_concurrency: int = field(default=100, metadata=_env("JOBKEEPER_WORKER_CONCURRENCY"))
    worker_batch_size: int = field(default=50, metadata=_env("JOBKEEPER_WORKER_BATCH_SIZE"))
    worker_claims_in_flight: int = field(default=2, metadata=_env("JOBKEEPER_WORKER_CLAIMS_IN_FLIGHT"))
    """Claim statements a worker keeps running at once, each on a connection of its own."""
    poll_interval: float = field(default=1.0, metadata=_env("JOBKEEPER_POLL_INTERVAL"))
    """Seconds between claims of an idle worker when no notification arrives."""
    shutdown_timeout: float = field(default=30.0, metadata=_env("JOBKEEPER_SHUTDOWN_TIMEOUT"))
    """Seconds a stopping worker lets running jobs finish before returning them to pending."""
    lease_seconds: float = field(default=30.0, metadata=_env("JOBKEEPER_LEASE_SECONDS"))
    """A running job whose heartbeat is older than this (database clock) is considered lost."""
    heartbeat_interval: float | None = field(default=None, metadata=_env("JOBKEEPER_HEARTBEAT_INTERVAL"))
    """Seconds between heartbeats; default a third of the lease."""

    # The HTTP API (`jobkeeper api`, `jobkeeper up`): where it listens, how callers authenticate, its limits.
    # No default key: without JOBKEEPER_JWT_SECRET or JOBKEEPER_JWT_PUBLIC_KEY the API refuses to start.
    host: str = field(default="127.0.0.1", metadata=_env("JOBKEEPER_HOST"))
    port: int = field(default=3011, metadata=_env("JOBKEEPER_PORT"))
    jwt_secret: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_JWT_SECRET"))
    """HMAC secret (HS256) of at least 32 bytes; never printed."""
    jwt_public_key: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_JWT_PUBLIC_KEY"))
    """PEM public key (RSA: RS256, EC P-256: ES256), given as PEM text or as the path of a PEM file."""
    jwt_audience: str | None = field(default=None, metadata=_env("JOBKEEPER_JWT_AUDIENCE"))
    jwt_issuer: str | None = field(default=None, metadata=_env("JOBKEEPER_JWT_ISSUER"))
    jwt_leeway: float = field(default=30.0, metadata=_env("JOBKEEPER_JWT_LEEWAY"))
    """Seconds of clock skew tolerated on exp/nbf/iat."""
    trusted_proxies: tuple[str, ...] = field(default=(), metadata=_env("JOBKEEPER_TRUSTED_PROXIES"))
    """Addresses (IPs or CIDR networks, comma-separated; `*`: any) of reverse proxies whose
    X-Forwarded-Proto and X-Forwarded-For are believed, as uvicorn's `forwarded_allow_ips`; empty: none."""
    session_cookie_secure: bool = field(default=False, metadata=_env("JOBKEEPER_SESSION_COOKIE_SECURE"))
    """Always mark the dashboard's cookies `Secure` (otherwise: when the request came over https)."""
    api_rate_per_second: float = field(default=100.0, metadata=_env("JOBKEEPER_API_RATE_PER_SECOND"))
    """Jobs per second a principal may create through the API (token bucket refill, shared by processes)."""
    api_rate_burst: int = field(default=500, metadata=_env("JOBKEEPER_API_RATE_BURST"))
    """Bucket size: jobs a principal may create at once; at least the batch maximum (100)."""
    api_max_body_bytes: int = field(default=4 * 1024 * 1024, metadata=_env("JOBKEEPER_API_MAX_BODY_BYTES"))
    api_acquire_timeout: float = field(default=5.0, metadata=_env("JOBKEEPER_API_ACQUIRE_TIMEOUT"))
    """Seconds a request waits for a database connection before answering 503."""
    api_stats_cache_ttl: float = field(default=2.0, metadata=_env("JOBKEEPER_API_STATS_CACHE_TTL"))
    ready_worker_max_age: float = field(default=60.0, metadata=_env("JOBKEEPER_READY_WORKER_MAX_AGE"))
    """Readiness needs a worker heartbeat at most this many seconds old."""
    metrics_window: float = field(default=300.0, metadata=_env("JOBKEEPER_METRICS_WINDOW"))
    """Seconds of history behind the metrics computed from the database (durations, results)."""
    metrics_token: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_METRICS_TOKEN"))
    """Bearer token a scraper sends to /metrics (at least 16 bytes; never printed): with it set, a scrape
    without it answers 401; unset, /metrics is public and shows no tenant's own queue or type name."""

    # Built-in processors (jobkeeper.processors): Stripe for payment-, refund- and payout-process …
    stripe_api_key: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_STRIPE_API_KEY"))
    """Secret (sk_…) or restricted (rk_…) Stripe key; never printed."""
    stripe_api_base: str = field(default="https://api.stripe.com", metadata=_env("JOBKEEPER_STRIPE_API_BASE"))
    stripe_timeout: float = field(default=30.0, metadata=_env("JOBKEEPER_STRIPE_TIMEOUT"))
    """Seconds a Stripe call may take to connect, and to answer, before it counts as a network error."""
    stripe_payout_mode: str = field(default="transfer", metadata=_env("JOBKEEPER_STRIPE_PAYOUT_MODE"))
    """payout-process: `transfer` (platform balance to the venue's connected account) or `payout` (the
    connected account's balance to its bank account)."""
    # … and Solana for nft-mint.
    solana_rpc_url: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_SOLANA_RPC_URL"))
    """JSON-RPC endpoint; never printed (providers put API keys in it)."""
    solana_keypair: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_SOLANA_KEYPAIR"))
    """Mint authority and fee payer: a solana-keygen JSON file's path, or the base58 secret key itself."""
    solana_commitment: str = field(default="confirmed", metadata=_env("JOBKEEPER_SOLANA_COMMITMENT"))
    solana_timeout: float = field(default=30.0, metadata=_env("JOBKEEPER_SOLANA_TIMEOUT"))
    """Seconds each Solana RPC call may take before it counts as a network error."""

    # Built-in processors, continued: email, SMS, push, analytics, cleanup and reports (docs/processors.md).
    provider_timeout: float = field(default=15.0, metadata=_env("JOBKEEPER_PROVIDER_TIMEOUT"))
    """Seconds each SMTP, SendGrid, Twilio, push and analytics call may take before it counts as a
    network error (retried)."""
    email_transport: str | None = field(default=None, metadata=_env("JOBKEEPER_EMAIL_TRANSPORT"))
    """send-email: `smtp` or `sendgrid`; unset, the one whose settings are present."""
    email_from: str | None = field(default=None, metadata=_env("JOBKEEPER_EMAIL_FROM"))
    """Sender of emails whose job names none, e.g. `Tickets <tickets@example.com>`."""
    email_templates_dir: Path | None = field(default=None, metadata=_env("JOBKEEPER_EMAIL_TEMPLATES_DIR"))
    """Your email templates, looked up before the built-in ones."""
    sms_templates_dir: Path | None = field(default=None, metadata=_env("JOBKEEPER_SMS_TEMPLATES_DIR"))
    """Your SMS templates (`NAME.txt`), looked up before the built-in ones."""
    smtp_host: str | None = field(default=None, metadata=_env("JOBKEEPER_SMTP_HOST"))
    smtp_port: int | None = field(default=None, metadata=_env("JOBKEEPER_SMTP_PORT"))
    """Default: 587 with STARTTLS, 465 with TLS, 25 without."""
    smtp_username: str | None = field(default=None, metadata=_env("JOBKEEPER_SMTP_USERNAME"))
    smtp_password: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_SMTP_PASSWORD"))
    smtp_security: str = field(default="starttls", metadata=_env("JOBKEEPER_SMTP_SECURITY"))
    """`starttls` (upgrade after connecting), `tls` (implicit TLS) or `none` (local relays only)."""
    sendgrid_api_key: str | None = field(
        default=None, repr=False, metadata=_env("JOBKEEPER_SENDGRID_API_KEY")
    )
    sendgrid_api_base: str = field(
        default="https://api.sendgrid.com", metadata=_env("JOBKEEPER_SENDGRID_API_BASE")
    )
    twilio_account_sid: str | None = field(default=None, metadata=_env("JOBKEEPER_TWILIO_ACCOUNT_SID"))
    twilio_auth_token: str | None = field(
        default=None, repr=False, metadata=_env("JOBKEEPER_TWILIO_AUTH_TOKEN")
    )
    twilio_from: str | None = field(default=None, metadata=_env("JOBKEEPER_TWILIO_FROM"))
    """Sending number in E.164 form (or an alphanumeric sender ID where the country allows it)."""
    twilio_api_base: str = field(default="https://api.twilio.com", metadata=_env("JOBKEEPER_TWILIO_API_BASE"))
    push_transport: str | None = field(default=None, metadata=_env("JOBKEEPER_PUSH_TRANSPORT"))
    """send-push: `webpush` (VAPID) or `fcm` (Firebase Cloud Messaging HTTP v1); unset, the configured one."""
    vapid_private_key: str | None = field(
        default=None, repr=False, metadata=_env("JOBKEEPER_VAPID_PRIVATE_KEY")
    )
    """P-256 key: PEM text, a PEM file's path, or base64url (raw 32 bytes or DER); never printed."""
    vapid_subject: str | None = field(default=None, metadata=_env("JOBKEEPER_VAPID_SUBJECT"))
    """Contact of the sender, `mailto:ops@example.com` or an https URL."""
    webpush_allow_http: bool = field(default=False, metadata=_env("JOBKEEPER_WEBPUSH_ALLOW_HTTP"))
    """Accept `http://` push endpoints (local push servers in development); browsers only give https."""
    fcm_project_id: str | None = field(default=None, metadata=_env("JOBKEEPER_FCM_PROJECT_ID"))
    """Default: the `project_id` of the service-account key."""
    fcm_credentials: str | None = field(default=None, repr=False, metadata=_env("JOBKEEPER_FCM_CREDENTIALS"))
    """Service-account key: the JSON file's path, or its JSON text; never printed."""
    fcm_api_base: str = field(default="https://fcm.googleapis.com", metadata=_env("JOBKEEPER_FCM_API_BASE"))
    fcm_token_url: str | None = field(default=None, metadata=_env("JOBKEEPER_FCM_TOKEN_URL"))
    """OAuth2 token endpoint; default: the key's `token_uri` (https://oauth2.googleapis.com/token)."""
    analytics_provider: str | None = field(default=None, metadata=_env("JOBKEEPER_ANALYTICS_PROVIDER"))
    """analytics-track: `segment` or `mixpanel`; unset, the configured one."""
    segment_write_key: str | None = field(
        default=None, repr=False, metadata=_env("JOBKEEPER_SEGMENT_WRITE_KEY")
    )
    segment_api_base: str = field(
        default="https://api.segment.io", metadata=_env("JOBKEEPER_SEGMENT_API_BASE")
    )
    mixpanel_token: str | None = field(default=None, metadata=_env("JOBKEEPER_MIXPANEL_TOKEN"))
    """Project token: events go to /track."""
    mixpanel_api_secret: str | None = field(
        default=None, repr=False, metadata=_env("JOBKEEPER_MIXPANEL_API_SECRET")
    )
    """Project API secret: events go to /import (authenticated, any age, deduplicated by $insert_id)."""
    mixpanel_api_base: str = field(
        default="https://api.mixpanel.com", metadata=_env("JOBKEEPER_MIXPANEL_API_BASE")
    )
    analytics_batch_size: int = field(default=100, metadata=_env("JOBKEEPER_ANALYTICS_BATCH_SIZE"))
    """Most events sent in one request."""
    analytics_batch_wait: float = field(default=0.05, metadata=_env("JOBKEEPER_ANALYTICS_BATCH_WAIT"))
    """Seconds a batch stays open for more events after its first one."""
    retention_finished_jobs: float | None = field(
        default=None, metadata=_env("JOBKEEPER_RETENTION_FINISHED_JOBS")
    )
    """cleanup-old-data: seconds finished jobs are kept (default 7 days)."""
    retention_queue_metrics: float | None = field(
        default=None, metadata=_env("JOBKEEPER_RETENTION_QUEUE_METRICS")
    )
    """Seconds metric snapshots are kept (default 30 days)."""
    retention_alerts: float | None = field(default=None, metadata=_env("JOBKEEPER_RETENTION_ALERTS"))
    """Seconds acknowledged alerts are kept (default 30 days)."""
    reports_dir: Path | None = field(default=None, metadata=_env("JOBKEEPER_REPORTS_DIR"))
    """generate-report: where reports too large for the job's result are written as files."""
    dev_outbox: bool | None = field(default=None, metadata=_env("JOBKEEPER_DEV_OUTBOX"))
    """Development only: send-email, send-sms and send-push without a provider store their message in the
    dashboard's Outbox, not delivered. Unset: off, except under `jobkeeper up` with the embedded database;
    `up` refuses it with DATABASE_URL set (jobkeeper.outbox)."""
    dev_outbox_by_up: bool = field(default=False, metadata=_env("JOBKEEPER_DEV_OUTBOX_BY_UP"))
    """Set by `jobkeeper up` for its children: its banner said the outbox is on, so they do not warn again."""

    # Alerts (the maintenance leader checks every few seconds; channels are used when configured).
    alert_webhook_url: str | None = field(default=None, metadata=_env("JOBKEEPER_ALERT_WEBHOOK_URL"))
    """A Slack-compatible incoming webhook that receives every alert."""
    alert_email_to: tuple[str, ...] = field(default=(), metadata=_env("JOBKEEPER_ALERT_EMAIL_TO"))
    """Addresses that receive alerts by email (comma-separated), through the SMTP settings."""
    alert_sms_to: tuple[str, ...] = field(default=(), metadata=_env("JOBKEEPER_ALERT_SMS_TO"))
    """Numbers (E.164) that receive alerts by SMS, through the Twilio settings."""
    pagerduty_routing_key: str | None = field(
        default=None, repr=False, metadata=_env("JOBKEEPER_PAGERDUTY_ROUTING_KEY")
    )
    pagerduty_api_base: str = field(
        default="https://events.pagerduty.com", metadata=_env("JOBKEEPER_PAGERDUTY_API_BASE")
    )
    alert_cooldown: float = field(default=900.0, metadata=_env("JOBKEEPER_ALERT_COOLDOWN"))
    """Seconds before an alert of the same rule and queue may repeat."""
    maintenance: bool = field(default=True, metadata=_env("JOBKEEPER_MAINTENANCE"))
    """Whether this worker competes for the maintenance lease (rescuer, scheduler, pruning, alerts)."""

    # Cron schedules: how many a tenant may have, how often they may fire, the scheduler's work per tick.
    schedules_per_tenant: int = field(default=100, metadata=_env("JOBKEEPER_SCHEDULES_PER_TENANT"))
    """Most schedules (active or paused) one tenant may have."""
    schedule_min_interval: float = field(default=60.0, metadata=_env("JOBKEEPER_SCHEDULE_MIN_INTERVAL"))
    """Seconds a schedule's slots must be apart at least; platform admins are exempt, 0 turns it off."""
    scheduler_max_fires: int = field(default=100, metadata=_env("JOBKEEPER_SCHEDULER_MAX_FIRES"))
    """Most jobs the scheduler enqueues per tick (1 s), shared round-robin between tenants."""

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
        """Keywords of every `psycopg.connect`: libpq timeouts, TLS and session settings, and whether to
        prepare statements."""
        options = [
            f"-c statement_timeout={int(self.statement_timeout * 1000)}",
            f"-c idle_in_transaction_session_timeout={int(self.idle_in_transaction_timeout * 1000)}",
            # JIT off: the service's statements are short, and a misestimated one (the alert checks' counts
            # over 1,000,000 finished jobs) spent a second of CPU compiling a 10 ms query (see
            # docs/benchmarks.md).
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


def parse_option(setting: str, option: str, raw: str) -> Any:
    """A command-line option's value parsed as the setting `setting` (the field name) would be: the same
    checks, with errors naming the option (`--trusted-proxies`) instead of the variable."""
    return _PARSERS[setting](option, raw.strip())


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


def _writable_file(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(f"{name} must name a file in an existing directory; got {raw!r}")
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


def _positive_seconds(name: str, raw: str) -> float:
    value = _seconds(name, raw)
    if value == 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _modules(name: str, raw: str) -> tuple[str, ...]:
    modules = tuple(part.strip() for part in raw.split(",") if part.strip())
    for module in modules:
        if not _MODULE.match(module):
            raise ConfigError(
                f"{name} must list importable module names separated by commas (e.g. myapp.tasks), "
                f"got {module!r}"
            )
    return modules


def _boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _secret(name: str, raw: str) -> str:
    return raw


def _names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


MIN_JWT_SECRET_BYTES = 32


def _host(name: str, raw: str) -> str:
    if any(ch.isspace() for ch in raw) or "/" in raw:
        raise ConfigError(f"{name} must be a host name or IP address such as 127.0.0.1, got {raw!r}")
    return raw


def _proxies(name: str, raw: str) -> tuple[str, ...]:
    entries = _names(name, raw)
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


MIN_METRICS_TOKEN_BYTES = 16


def _scrape_token(name: str, raw: str) -> str:
    # The message never repeats the token.
    if len(raw.encode("utf-8")) < MIN_METRICS_TOKEN_BYTES or any(ch.isspace() for ch in raw):
        raise ConfigError(
            f"{name} must be at least {MIN_METRICS_TOKEN_BYTES} bytes without spaces; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return raw


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a TCP port from 1 to 65535, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ConfigError(f"{name} must be a TCP port from 1 to 65535, got {raw!r}")
    return value


def _text(name: str, raw: str) -> str:
    return raw


def _jwt_secret(name: str, raw: str) -> str:
    # The message never repeats the secret.
    size = len(raw.encode("utf-8"))
    if size < MIN_JWT_SECRET_BYTES:
        raise ConfigError(
            f"{name} must be at least {MIN_JWT_SECRET_BYTES} bytes (got {size}); generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    return raw


def _pem_public_key(name: str, raw: str) -> str:
    """PEM text as given, or read from the file the value names. The key itself is checked by the API."""
    if raw.startswith("-----BEGIN"):
        return raw.replace("\\n", "\n")
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must be a PEM public key or the path of a PEM file; {raw!r} is neither")
    return path.read_text(encoding="utf-8")


STRIPE_PAYOUT_MODES = ("transfer", "payout")
SOLANA_COMMITMENTS = ("processed", "confirmed", "finalized")


def _http_url(name: str, raw: str) -> str:
    # The value is not repeated: RPC providers put API keys in their URLs.
    scheme, _, rest = raw.partition("://")
    if scheme not in ("http", "https") or not rest.strip("/"):
        raise ConfigError(f"{name} must be an http:// or https:// URL")
    return raw.rstrip("/")


def _stripe_key(name: str, raw: str) -> str:
    if raw.startswith("pk_"):
        raise ConfigError(
            f"{name} must be a secret key (sk_…) or a restricted key (rk_…), not a publishable key"
        )
    if not raw.startswith(("sk_", "rk_")):
        raise ConfigError(f"{name} must be a Stripe secret key (sk_…) or restricted key (rk_…)")
    return raw


def _keypair(name: str, raw: str) -> str:
    """A keypair file's path (checked to exist), or key material as given (checked by the nft processor)."""
    if raw.startswith("[") or not any(ch in raw for ch in "/.~\\"):
        return raw
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must be a keypair JSON file or a base58 secret key; {raw!r} is no file")
    return str(path)


EMAIL_TRANSPORTS = ("smtp", "sendgrid")
SMTP_SECURITY = ("starttls", "tls", "none")
PUSH_TRANSPORTS = ("webpush", "fcm")
ANALYTICS_PROVIDERS = ("segment", "mixpanel")


def _key_text_or_file(name: str, raw: str) -> str:
    """Key material as given (PEM, JSON or base64), or the content of the file the value names. The key
    itself is checked by its processor (`jobkeeper.processors.configuration_problems`)."""
    if raw.startswith(("-----BEGIN", "{")):
        return raw.replace("\\n", "\n") if raw.startswith("-----BEGIN") else raw
    looks_like_path = raw.startswith(("/", "~", ".")) or raw.endswith((".pem", ".json", ".key"))
    if not looks_like_path:
        return raw
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must be key material or the path of a readable file; {raw!r} is no file")
    return path.read_text(encoding="utf-8")


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
    "prepared_statements": _boolean,
    "default_queue": _queue_name,
    "default_tenant": _uuid,
    "max_payload_bytes": _positive_int,
    "idempotency_ttl": _seconds,
    "allow_unknown_types": _boolean,
    "log_level": _choice(LOG_LEVELS, upper=True),
    "log_format": _choice(LOG_FORMATS),
    "log_file": _writable_file,
    "log_file_max_bytes": _positive_int,
    "log_file_backups": _positive_int,
    "imports": _modules,
    "worker_queues": _names,
    "worker_concurrency": _positive_int,
    "worker_batch_size": _positive_int,
    "worker_claims_in_flight": _positive_int,
    "poll_interval": _positive_seconds,
    "shutdown_timeout": _seconds,
    "lease_seconds": _positive_seconds,
    "heartbeat_interval": _positive_seconds,
    "host": _host,
    "port": _port,
    "trusted_proxies": _proxies,
    "session_cookie_secure": _boolean,
    "jwt_secret": _jwt_secret,
    "jwt_public_key": _pem_public_key,
    "jwt_audience": _text,
    "jwt_issuer": _text,
    "jwt_leeway": _seconds,
    "api_rate_per_second": _positive_seconds,
    "api_rate_burst": _positive_int,
    "api_max_body_bytes": _positive_int,
    "api_acquire_timeout": _positive_seconds,
    "api_stats_cache_ttl": _seconds,
    "ready_worker_max_age": _positive_seconds,
    "metrics_window": _positive_seconds,
    "metrics_token": _scrape_token,
    "stripe_api_key": _stripe_key,
    "stripe_api_base": _http_url,
    "stripe_timeout": _positive_seconds,
    "stripe_payout_mode": _choice(STRIPE_PAYOUT_MODES),
    "solana_rpc_url": _http_url,
    "solana_keypair": _keypair,
    "solana_commitment": _choice(SOLANA_COMMITMENTS),
    "solana_timeout": _positive_seconds,
    "provider_timeout": _positive_seconds,
    "email_transport": _choice(EMAIL_TRANSPORTS),
    "email_from": _text,
    "email_templates_dir": _directory,
    "sms_templates_dir": _directory,
    "smtp_host": _host,
    "smtp_port": _port,
    "smtp_username": _text,
    "smtp_password": _text,
    "smtp_security": _choice(SMTP_SECURITY),
    "sendgrid_api_key": _text,
    "sendgrid_api_base": _http_url,
    "twilio_account_sid": _text,
    "twilio_auth_token": _text,
    "twilio_from": _text,
    "twilio_api_base": _http_url,
    "push_transport": _choice(PUSH_TRANSPORTS),
    "vapid_private_key": _key_text_or_file,
    "vapid_subject": _text,
    "webpush_allow_http": _boolean,
    "fcm_project_id": _text,
    "fcm_credentials": _key_text_or_file,
    "fcm_api_base": _http_url,
    "fcm_token_url": _http_url,
    "analytics_provider": _choice(ANALYTICS_PROVIDERS),
    "segment_write_key": _text,
    "segment_api_base": _http_url,
    "mixpanel_token": _text,
    "mixpanel_api_secret": _text,
    "mixpanel_api_base": _http_url,
    "analytics_batch_size": _positive_int,
    "analytics_batch_wait": _seconds,
    "retention_finished_jobs": _positive_seconds,
    "retention_queue_metrics": _positive_seconds,
    "retention_alerts": _positive_seconds,
    "reports_dir": _directory,
    "dev_outbox": _boolean,
    "dev_outbox_by_up": _boolean,
    "alert_webhook_url": _http_url,
    "alert_email_to": _names,
    "alert_sms_to": _names,
    "pagerduty_routing_key": _secret,
    "pagerduty_api_base": _http_url,
    "alert_cooldown": _positive_seconds,
    "maintenance": _boolean,
    "schedules_per_tenant": _positive_int,
    "schedule_min_interval": _seconds,
    "scheduler_max_fires": _positive_int,
}

# Variables read by other parts (tests, the embedded server) that are not settings of the service.
_NOT_SETTINGS = {"JOBKEEPER_TEST_DATABASE_URL"}


def _warn_unknown(env: Mapping[str, str], known: list[str]) -> None:
    for name in env:
        if name.startswith("JOBKEEPER_") and name not in known and name not in _NOT_SETTINGS:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            log.warning("ignoring unknown setting %s%s", name, hint)
