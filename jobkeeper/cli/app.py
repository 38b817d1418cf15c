"""The `jobkeeper` command."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import click

from jobkeeper import __version__
from jobkeeper.cli.common import FiniteFloatRange, confirm_or_refuse, renamed
from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError, JobkeeperError

if TYPE_CHECKING:  # imported where used: `jobkeeper --help` must not pay for psycopg and Alembic
    from jobkeeper.process.database import Database

log = logging.getLogger("jobkeeper")


class ConfigurationError(click.ClickException):
    """A missing or malformed setting: one line naming it, exit status 2."""

    exit_code = 2


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None


def _option(setting: str, option: str, raw: str) -> Any:
    from jobkeeper.config import parse_option

    try:
        return parse_option(setting, option, raw)
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None


def _configure_logging(settings: Settings) -> None:
    from jobkeeper.logs import configure_logging

    configure_logging(settings)


def _with_database(body: Callable[[Database], None], *, supervise: bool = False) -> None:
    settings = _settings()
    _configure_logging(settings)
    from jobkeeper.cli.common import translated_errors
    from jobkeeper.process.database import open_database

    try:
        with translated_errors(), open_database(settings, supervise=supervise) as database:
            body(database)  # an unreachable database exits 3, as every admin command does
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    except JobkeeperError as exc:
        raise click.ClickException(str(exc)) from None


_trusted_proxies = click.option(
    "--trusted-proxies",
    metavar="ADDRESSES",
    help="Reverse proxies whose X-Forwarded-Proto/-For are believed: IPs or networks, comma-separated, or * "
    "(JOBKEEPER_TRUSTED_PROXIES; default none).",
)


class _Main(click.Group):
    """The top command. A verb's former name still runs it, without being listed (docs/decisions.md,
    "One spelling of dead letters")."""

    FORMER_NAMES: ClassVar[dict[str, str]] = {"dlq": "dead-letters"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.FORMER_NAMES.get(cmd_name, cmd_name))


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobkeeper")
def main() -> None:
    """jobkeeper: a durable, multi-tenant job queue on PostgreSQL."""


@main.command()
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True, help="Worker processes.")
@click.option("--import", "imports", multiple=True, metavar="MODULE", help="Handler module for the workers.")
@click.option("--no-api", is_flag=True, help="Do not serve the HTTP API.")
@_trusted_proxies
@click.option(
    "--verbose",
    is_flag=True,
    help="Log everything (JOBKEEPER_LOG_LEVEL=DEBUG): the embedded server, migrations, each start.",
)
def up(
    workers: int, imports: tuple[str, ...], no_api: bool, trusted_proxies: str | None, verbose: bool
) -> None:
    """Start everything: the database (embedded when DATABASE_URL is unset), migrations, the HTTP API and
    workers (with maintenance). Children that die are restarted. Ctrl-C or SIGTERM stops it all
    gracefully, the embedded database last.

    Prints where everything is, then only warnings and errors of the API and workers, unless
    JOBKEEPER_LOG_LEVEL is set or --verbose is given.
    """
    import os

    if verbose:
        os.environ["JOBKEEPER_LOG_LEVEL"] = "DEBUG"
    from jobkeeper.process.devauth import dev_auth, needs_dev_auth
    from jobkeeper.process.supervisor import Supervisor, child_environment

    stop = threading.Event()
    stopping: list[Any] = []  # the supervisor, once it is stopping its children

    def _stop(signum: int, _frame: Any) -> None:
        if stop.is_set() and stopping:
            stopping[0].hurry()  # a second Ctrl-C: the workers hand their running jobs back now
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    settings = _settings()
    from jobkeeper.processors.outbox import up_environment

    try:
        outbox_env = up_environment(settings)  # the development outbox: embedded setup only
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    auth_env: dict[str, str] = {}
    if trusted_proxies is not None:  # checked here, handed to the API child as its setting
        proxies = _option("trusted_proxies", "--trusted-proxies", trusted_proxies)
        auth_env["JOBKEEPER_TRUSTED_PROXIES"] = ",".join(proxies)
    minted = False
    if not no_api:
        from jobkeeper.api.app import check_settings

        if needs_dev_auth(settings):
            settings, auth_env = dev_auth(settings)
            minted = True
        try:
            check_settings(settings)  # before any database is started
        except ConfigError as exc:
            raise ConfigurationError(f"{exc} (or run `jobkeeper up --no-api`)") from None

    def body(database: Database) -> None:
        from jobkeeper.store import migrate

        started = time.monotonic()
        before = migrate.current(database.url)
        migrate.upgrade(database.url)
        after = migrate.current(database.url)
        where = f"embedded PostgreSQL in {database.embedded.pgdata}" if database.embedded else "DATABASE_URL"
        click.echo(f"database: {where}")
        click.echo(
            f"database url: {database.url}" if database.embedded else "database url: (from DATABASE_URL)"
        )
        click.echo(f"data dir: {settings.data_dir}" if database.embedded else "data dir: (not used)")
        click.echo(f"migrations: {before or 'none'} -> {after} ({time.monotonic() - started:.2f} s)")
        supervisor = Supervisor()
        env = child_environment(database.url) | auth_env | outbox_env
        # The banner says where everything is; the children's routine INFO lines would bury it.
        env.setdefault("JOBKEEPER_LOG_LEVEL", "WARNING")
        api_child = None
        if not no_api:
            api_child = supervisor.add("api", ["api"], env)
            base = f"http://{settings.host}:{settings.port}"
            click.echo(f"api: {base}/api/v1/queue (OpenAPI docs at {base}/docs)")
            click.echo(f"dashboard: {base}/dashboard")
            click.echo(f"metrics: {base}/metrics")
            if minted:
                from jobkeeper.api.auth import Role, mint_token

                token = mint_token(
                    settings,
                    role=Role.ADMIN,
                    tenant_id=settings.default_tenant,
                    subject="dev",
                    ttl_seconds=86400,
                )
                click.echo(f"development admin token (24 h; secret in {settings.data_dir}/dev-jwt-secret):")
                click.echo(f"  {token}")
        args = ["worker", *(arg for module in imports for arg in ("--import", module))]
        for n in range(workers):
            supervisor.add(f"worker {n + 1}", args, env)
        click.echo(f"workers: {workers} (maintenance runs in one of them at a time)")
        if outbox_env:
            click.echo(
                "development outbox: on — email, SMS and push without a provider are not delivered, "
                "only shown at /dashboard/outbox"
            )
        if api_child is not None:
            from jobkeeper.process.supervisor import wait_until_serving

            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
            health = f"http://{host}:{settings.port}/health"
            if not wait_until_serving(api_child, health, timeout=60.0, stop=stop):
                click.echo(f"warning: the API did not answer {health} yet; see its log above")
        click.echo("jobkeeper is up; press Ctrl-C to stop")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                supervisor.check()
        finally:
            click.echo("jobkeeper is stopping (Ctrl-C again to hand running jobs back at once)")
            sys.stdout.flush()
            stopping.append(supervisor)
            supervisor.stop(grace=settings.shutdown_timeout + 5)

    _with_database(body, supervise=True)
    click.echo("jobkeeper stopped")


@main.group()
def db() -> None:
    """Database schema: upgrade, downgrade, current revision, SQL."""


def _migrate(direction: Literal["upgrade", "downgrade"], revision: str) -> None:
    """Move the schema to `revision` and print the revisions before and after (`base`: no schema)."""

    def body(database: Database) -> None:
        from jobkeeper.store import migrate

        before = migrate.current(database.url)
        (migrate.upgrade if direction == "upgrade" else migrate.downgrade)(database.url, revision)
        click.echo(f"{before or 'none'} -> {migrate.current(database.url) or 'base'}")

    _with_database(body)


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: head). Running it again is a no-op."""
    _migrate("upgrade", revision)


@db.command("downgrade")
@click.argument("revision", default="-1")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_downgrade(revision: str, yes: bool) -> None:
    """Revert the schema to REVISION (default: one step back; `base` removes everything)."""
    if not yes:
        confirm_or_refuse(
            f"Downgrade the jobkeeper schema to {revision}? Data in removed tables is lost",
            "the schema is unchanged",
        )
    _migrate("downgrade", revision)


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help='Print {"revision", "head", "at_head"} as JSON.')
def db_current(as_json: bool) -> None:
    """Print the schema revision of the database and whether it is the newest."""

    def body(database: Database) -> None:
        from jobkeeper.store import migrate

        revision = migrate.current(database.url)
        head = migrate.head()
        if as_json:
            click.echo(json.dumps({"revision": revision, "head": head, "at_head": revision == head}))
            return
        state = "head" if revision == head else f"behind head {head}"
        click.echo(f"{revision or 'none'} ({state})")

    _with_database(body)


@db.command("sql")
def db_sql() -> None:
    """Print the SQL of every migration up to head, for review."""
    from jobkeeper.store import migrate

    click.echo(migrate.upgrade_sql())


@main.command()
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help="Module whose @task handlers to run (repeatable; also JOBKEEPER_IMPORTS, comma-separated).",
)
@click.option("--queues", metavar="A,B", help="Queues to serve, comma-separated (default: all).")
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Jobs run at once (JOBKEEPER_WORKER_CONCURRENCY)."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Jobs claimed per statement (JOBKEEPER_WORKER_BATCH_SIZE).",
)
@click.option("--no-builtins", is_flag=True, help="Do not run the built-in processors (payments, email, …).")
@click.option(
    "--no-maintenance", is_flag=True, help="Do not compete for the maintenance lease (JOBKEEPER_MAINTENANCE)."
)
def worker(
    imports: tuple[str, ...],
    queues: str | None,
    concurrency: int | None,
    batch_size: int | None,
    no_builtins: bool,
    no_maintenance: bool,
) -> None:
    """Run job handlers until SIGTERM or Ctrl-C, then stop gracefully.

    Runs the built-in processors and the handlers of every --import module (yours replace built-ins of
    the same job type). One worker at a time also runs maintenance (rescuer, cron scheduler, pruning,
    metric snapshots, alerts) under a lease. Running jobs get JOBKEEPER_SHUTDOWN_TIMEOUT seconds
    (default 30) to finish; jobs still running then go back to pending without spending an attempt.
    Exits 0 after a graceful stop.
    """
    import dataclasses
    import os

    from jobkeeper.process.runtime import build_worker, import_handlers, prepare_registry
    from jobkeeper.worker.worker import run_worker

    settings = _settings()
    _configure_logging(settings)
    modules = [*settings.imports, *imports]
    try:
        import_handlers(modules)  # a module that does not import is refused before any database is used
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    served = [name.strip() for name in queues.split(",") if name.strip()] if queues else None
    abandoned: list[bool] = []

    def body(database: Database) -> None:
        # The URL found (DATABASE_URL, or the embedded server `up` runs) is the one every part uses,
        # the processors that read the database included.
        found = dataclasses.replace(settings, database_url=database.url)
        registry = prepare_registry(found, modules, builtins=not no_builtins)
        runner = build_worker(
            database.url,
            found,
            registry,
            queues=served,
            concurrency=concurrency,
            batch_size=batch_size,
            maintenance=False if no_maintenance else None,
        )
        abandoned.append(run_worker(runner))

    _with_database(body)
    # A sync handler that ignored its timeout still holds a thread, and an async one that ignored its
    # cancellation a task, which would keep the process alive forever (their jobs' outcomes are written
    # already): leave without waiting for them.
    stuck = [t for t in threading.enumerate() if t.name.startswith("jobkeeper-handler")]
    for thread in stuck:
        thread.join(0.5)
    if any(abandoned) or any(t.is_alive() for t in stuck):
        log.warning(
            "leaving %d handler threads and the handler tasks that did not finish",
            sum(t.is_alive() for t in stuck),
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@main.command()
@click.option("--host", metavar="HOST", help="Address to listen on (JOBKEEPER_HOST, default 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="TCP port to listen on (JOBKEEPER_PORT, default 3011)."
)
@_trusted_proxies
def api(host: str | None, port: int | None, trusted_proxies: str | None) -> None:
    """Serve the HTTP API until SIGTERM or Ctrl-C (OpenAPI at /docs).

    Refuses to start without authentication configured: JOBKEEPER_JWT_SECRET (HS256, 32+ bytes) or
    JOBKEEPER_JWT_PUBLIC_KEY (RS256/ES256), and JOBKEEPER_JWT_AUDIENCE and JOBKEEPER_JWT_ISSUER.
    """
    import asyncio
    import dataclasses

    from jobkeeper.api.app import check_settings
    from jobkeeper.server import serve_api

    settings = _settings()
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if trusted_proxies is not None:
        overrides["trusted_proxies"] = _option("trusted_proxies", "--trusted-proxies", trusted_proxies)
    settings = dataclasses.replace(settings, **overrides)
    try:
        check_settings(settings)  # before any database is started
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None

    def body(database: Database) -> None:
        asyncio.run(serve_api(settings, database.url))

    _with_database(body)


@main.command()
@click.option(
    "--role",
    type=click.Choice(["admin", "venue_admin", "user"]),
    required=True,
    help="admin: every tenant; venue_admin: administers its tenant; user: enqueues and reads.",
)
@click.option(
    "--tenant",
    "tenant",
    default=None,
    metavar="UUID",
    help="The tenant the token acts for (default: JOBKEEPER_DEFAULT_TENANT, the development tenant).",
)
@click.option("--sub", "subject", default="dev", show_default=True, help="The token's subject.")
@click.option("--ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Lifetime, seconds.")
def token(role: str, tenant: str | None, subject: str, ttl: int) -> None:
    """Print a JWT for development, signed with JOBKEEPER_JWT_SECRET, or, beside the embedded
    `jobkeeper up` (no DATABASE_URL, no JWT settings), with the development secret it keeps in the data
    dir: so a new token needs no restart when the one `up` printed expires."""
    import uuid

    from jobkeeper.api.auth import Role, mint_token
    from jobkeeper.process.devauth import existing_dev_auth, needs_dev_auth

    settings = _settings()
    try:
        tenant_id = settings.default_tenant if tenant is None else uuid.UUID(tenant)
    except ValueError:
        raise click.BadParameter(f"{tenant!r} is not a UUID", param_hint="--tenant") from None
    try:
        if needs_dev_auth(settings):
            settings = existing_dev_auth(settings)
        minted = mint_token(settings, role=Role(role), tenant_id=tenant_id, subject=subject, ttl_seconds=ttl)
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    click.echo(minted)


_TENANT = click.option(
    "--tenant",
    "tenant",
    type=click.UUID,
    default=None,
    help="Tenant (default: JOBKEEPER_DEFAULT_TENANT, the development tenant).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _tenant_or_default(tenant: Any) -> Any:
    return tenant if tenant is not None else _settings().default_tenant


@main.group()
def schedules() -> None:
    """Cron schedules: list, add, pause, resume, delete (the leader fires them)."""


@schedules.command("list")
@click.option("--tenant", "tenant", type=click.UUID, default=None, help="Only this tenant's (default: all).")
@_JSON
def schedules_list(tenant: Any, as_json: bool) -> None:
    """List schedules with their next run."""
    from jobkeeper.cli import admin as cli_admin

    _with_database(lambda db: cli_admin.list_schedules(db.url, tenant, as_json))


@schedules.command("add")
@click.argument("name")
@click.option("--cron", "cron_expression", required=True, help="5 fields, or 6 with seconds first.")
@click.option("--type", "job_type", required=True, help="Job type to enqueue.")
@click.option("--queue", default="background", show_default=True)
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone, e.g. Europe/Paris.")
@click.option("--data", "payload", default="{}", show_default=True, help="The job's data, a JSON object.")
@click.option(
    "--payload", "old_payload", hidden=True, expose_value=False, callback=renamed("--data (the job's data)")
)
@click.option("--priority", type=click.IntRange(1, 10), default=None)
@click.option(
    "--missed", "missed_policy", type=click.Choice(["skip", "run_once", "catch_up"]), default="skip"
)
@click.option(
    "--catch-up-window",
    type=FiniteFloatRange(min=1, max=30 * 86400),
    default=3600.0,
    show_default=True,
    help="Seconds (at most 30 days, as the API).",
)
@click.option("--overlap", "overlap_policy", type=click.Choice(["allow", "skip"]), default="allow")
@_TENANT
@_JSON
def schedules_add(
    name: str,
    cron_expression: str,
    job_type: str,
    queue: str,
    timezone: str,
    payload: str,
    priority: int | None,
    missed_policy: str,
    catch_up_window: float,
    overlap_policy: str,
    tenant: Any,
    as_json: bool,
) -> None:
    """Add a schedule NAME that enqueues a job of --type on every --cron slot."""
    from jobkeeper.cli import admin as cli_admin

    options = {
        "tenant_id": _tenant_or_default(tenant),
        "name": name,
        "cron": cron_expression,
        "timezone": timezone,
        "queue": queue,
        "job_type": job_type,
        "payload": payload,
        "priority": priority,
        "missed_policy": missed_policy,
        "catch_up_window_seconds": catch_up_window,
        "overlap_policy": overlap_policy,
    }
    _with_database(lambda db: cli_admin.add_schedule(db.url, options, as_json))


def _schedule_options(command: Callable[..., None]) -> Callable[..., None]:
    """SCHEDULE (an id or a name), --tenant and --json: the options of pause, resume and delete."""
    return click.argument("schedule")(_TENANT(_JSON(command)))


def _on_schedule(schedule: str, tenant: Any, as_json: bool, *, active: bool | None) -> None:
    """Pause (active False), resume (True) or delete (None) SCHEDULE of the tenant."""
    from jobkeeper.cli import admin as cli_admin

    tid = _tenant_or_default(tenant)
    if active is None:
        _with_database(lambda db: cli_admin.delete_schedule(db.url, tid, schedule, as_json))
    else:
        _with_database(lambda db: cli_admin.set_schedule_active(db.url, tid, schedule, active, as_json))


@schedules.command("pause")
@_schedule_options
def schedules_pause(schedule: str, tenant: Any, as_json: bool) -> None:
    """Stop firing SCHEDULE (an id or a name)."""
    _on_schedule(schedule, tenant, as_json, active=False)


@schedules.command("resume")
@_schedule_options
def schedules_resume(schedule: str, tenant: Any, as_json: bool) -> None:
    """Fire SCHEDULE again from its next slot (missed slots while paused are skipped)."""
    _on_schedule(schedule, tenant, as_json, active=True)


@schedules.command("delete")
@_schedule_options
def schedules_delete(schedule: str, tenant: Any, as_json: bool) -> None:
    """Delete SCHEDULE (an id or a name)."""
    _on_schedule(schedule, tenant, as_json, active=None)


@main.group()
def limits() -> None:
    """Outbound rate limiters shared by all workers: list, set."""


@limits.command("list")
@_JSON
def limits_list(as_json: bool) -> None:
    """Every limiter with its tokens now, calls in flight and waits so far."""
    from jobkeeper.cli import admin as cli_admin

    _with_database(lambda db: cli_admin.list_limits(db.url, as_json))


LIMIT_MAX = 1_000_000
"""The largest rate, burst and concurrency cap, as the API's limiter update takes."""
RATE_MIN = 0.001
"""The slowest rate, as the API's limiter update takes (a rate such as 5e-324 stops a limiter)."""


@limits.command("set")
@click.argument("name")
@click.option("--rate", "rate_per_second", type=FiniteFloatRange(min=RATE_MIN, max=LIMIT_MAX), default=None)
@click.option("--burst", type=click.IntRange(min=1, max=LIMIT_MAX), default=None)
@click.option("--max-concurrency", type=click.IntRange(min=1, max=LIMIT_MAX), default=None)
@click.option("--unlimited-concurrency", is_flag=True, help="Remove the concurrency cap.")
@_JSON
def limits_set(
    name: str,
    rate_per_second: float | None,
    burst: int | None,
    max_concurrency: int | None,
    unlimited_concurrency: bool,
    as_json: bool,
) -> None:
    """Change limiter NAME; every worker uses the new values from its next claim."""
    from jobkeeper.cli import admin as cli_admin

    changes = {
        "rate_per_second": rate_per_second,
        "burst": burst,
        "max_concurrency": max_concurrency,
        "clear_max_concurrency": unlimited_concurrency,
    }
    _with_database(lambda db: cli_admin.set_limit(db.url, name, changes, as_json))


def _register_admin_commands() -> None:
    """The admin verbs live in modules of their own (docs/cli.md)."""
    from jobkeeper.cli.alerts import alerts
    from jobkeeper.cli.dead_letters import dead_letters
    from jobkeeper.cli.doctor import doctor
    from jobkeeper.cli.enqueue import enqueue
    from jobkeeper.cli.jobs import jobs
    from jobkeeper.cli.queues import queues
    from jobkeeper.cli.types import types
    from jobkeeper.cli.workers import workers

    for command in (enqueue, jobs, queues, types, dead_letters, alerts, workers, doctor):
        main.add_command(command)


_register_admin_commands()
