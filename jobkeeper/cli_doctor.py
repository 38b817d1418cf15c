"""`jobkeeper doctor`: checks the configuration, the database (reachability, TLS, migrations), workers,
queues, the API's authentication and the handlers of queued job types, and says what to fix.

Exit status: 0 nothing to fix (warnings allowed, unless --strict); 2 the configuration is invalid;
3 the database is unreachable; 1 another check failed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import click

from jobkeeper.cli_common import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, to_json
from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

Status = Literal["ok", "warn", "fail", "skip"]
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
NOT_SETTINGS = {"JOBKEEPER_TEST_DATABASE_URL"}
CONNECT_TIMEOUT_CAP = 5


@dataclasses.dataclass(slots=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str | None = None


@dataclasses.dataclass(slots=True)
class Report:
    checks: list[Check] = dataclasses.field(default_factory=list)
    config_invalid: bool = False
    unreachable: bool = False

    def add(self, name: str, status: Status, message: str, fix: str | None = None) -> None:
        self.checks.append(Check(name, status, message, fix))

    def exit_code(self, strict: bool) -> int:
        if self.config_invalid:
            return EXIT_USAGE
        if self.unreachable:
            return EXIT_UNREACHABLE
        bad = {"fail", "warn"} if strict else {"fail"}
        return EXIT_FAILED if any(c.status in bad for c in self.checks) else EXIT_OK


@click.command()
@click.option("--no-api", is_flag=True, help="This machine serves no API: skip the authentication check.")
@click.option("--strict", is_flag=True, help="Warnings count as problems (exit 1).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(no_api: bool, strict: bool, as_json: bool) -> None:
    """Check configuration, database, TLS, migrations, workers, queues, API authentication and handlers;
    print what to fix. Exit 0 when nothing needs fixing, 2 invalid configuration, 3 database
    unreachable, 1 another problem."""
    report = Report()
    settings = _configuration(report, os.environ)
    found = settings
    with _database(report, settings) as connected:
        if connected is not None:
            conn, url = connected
            # The embedded server's URL is the database URL of every worker beside it (see database.py).
            found = dataclasses.replace(settings, database_url=url)
            _migrations(report, url)
            _workers_and_handlers(report, settings, conn)
        else:
            for name in ("migrations", "workers", "queues", "handlers"):
                report.add(name, "skip", "not checked: no database connection")
    if no_api:
        report.add("api auth", "skip", "not checked (--no-api)")
    else:
        _api_auth(report, settings)
    _providers(report, found)
    code = report.exit_code(strict)
    if as_json:
        click.echo(to_json({"exit_code": code, "checks": [dataclasses.asdict(c) for c in report.checks]}))
    else:
        _print(report, code)
    raise SystemExit(code)


def _print(report: Report, code: int) -> None:
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        label = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}[check.status]
        click.echo(f"{label:<4}  {check.name.ljust(width)}  {check.message}")
        if check.fix and check.status in ("warn", "fail"):
            click.echo(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    problems = sum(c.status == "fail" for c in report.checks)
    warnings = sum(c.status == "warn" for c in report.checks)
    verdict = "nothing to fix" if code == EXIT_OK else "something needs fixing"
    click.echo(f"{verdict}: {problems} problems, {warnings} warnings")


def _configuration(report: Report, env: Mapping[str, str]) -> Settings:
    """Every malformed variable is reported (one line each), not only the first; the checks that follow
    use the settings without them."""
    known = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    present = {k: v for k, v in env.items() if k in known and v.strip()}
    failing: dict[str, str] = {}
    for name, raw in present.items():
        try:
            Settings.from_env({name: raw})
        except ConfigError as exc:
            failing[name] = str(exc)
    base = {k: v for k, v in present.items() if k not in failing}
    for name in list(failing):  # fails alone, but maybe not beside a related variable (lease, heartbeat)
        try:
            Settings.from_env(base | {name: present[name]})
        except ConfigError as exc:
            failing[name] = str(exc)
        else:
            del failing[name]
            base[name] = present[name]
    problems = list(failing.values())
    try:
        settings = Settings.from_env(base)
    except ConfigError as exc:
        problems.append(str(exc))
        settings = Settings.from_env({})
    for problem in problems:
        report.add("configuration", "fail", problem, "correct the variable (docs/configuration.md)")
    report.config_invalid = bool(problems)
    for name in sorted(env):
        if name.startswith("JOBKEEPER_") and name not in known and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]}?" if close else "remove it"
            report.add("configuration", "warn", f"unknown setting {name} is ignored", hint)
    if not problems:
        report.add("configuration", "ok", f"{len(present)} settings from the environment, all valid")
    return settings


Connected = tuple["psycopg.Connection[dict[str, Any]]", str] | None


@contextmanager
def _database(report: Report, settings: Settings) -> Iterator[Connected]:
    import psycopg
    from psycopg.rows import dict_row

    from jobkeeper.embedded import EmbeddedPostgres

    url = settings.database_url
    if url is None and os.environ.get("DATABASE_URL", "").strip():
        # Set but invalid (reported under configuration): not a reason to check the embedded server.
        report.add("database", "skip", "not checked: DATABASE_URL is invalid (see configuration)")
        report.add("tls", "skip", "not checked: no database connection")
        yield None
        return
    if url is None:
        server = EmbeddedPostgres(settings.data_dir)
        if not (server.pgdata / "postmaster.pid").exists():
            report.unreachable = True
            report.add(
                "database",
                "fail",
                f"DATABASE_URL is unset and the embedded PostgreSQL in {server.pgdata} is not running",
                "run `jobkeeper up` (it starts the embedded database), or set DATABASE_URL",
            )
            report.add("tls", "skip", "not checked: no database connection")
            yield None
            return
        try:
            url = server.start()  # already running: only reads its URL
        except Exception as exc:  # the embedded server's own errors are not ours to classify
            report.unreachable = True
            report.add("database", "fail", f"embedded PostgreSQL: {exc}", "run `jobkeeper up`")
            yield None
            return
    kwargs = settings.connection_kwargs()
    kwargs["connect_timeout"] = min(kwargs["connect_timeout"], CONNECT_TIMEOUT_CAP)
    try:
        conn = psycopg.connect(url, autocommit=True, row_factory=dict_row, **kwargs)
    except psycopg.Error as exc:
        report.unreachable = True
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report.add(
            "database",
            "fail",
            f"cannot connect: {first}",
            "check that the server runs and that host, port, user, password and database in "
            "DATABASE_URL are right",
        )
        _tls(report, settings, url, None)
        yield None
        return
    with conn:
        info = conn.info
        where = f"{info.host}:{info.port}/{info.dbname}" if not info.host.startswith("/") else info.dbname
        version = f"{info.server_version // 10000}.{info.server_version % 10000}"
        embedded = " (embedded)" if settings.database_url is None else ""
        report.add("database", "ok", f"PostgreSQL {version} at {where} as {info.user}{embedded}")
        _tls(report, settings, url, conn)
        yield conn, url


def _tls(report: Report, settings: Settings, url: str, conn: psycopg.Connection[Any] | None) -> None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:  # a URL libpq cannot parse was reported by the connection attempt
        params = {}
    host = conn.info.host if conn is not None else str(params.get("host") or "")
    mode = settings.sslmode or str(params.get("sslmode") or os.environ.get("PGSSLMODE") or "prefer")
    in_use = conn.pgconn.ssl_in_use if conn is not None else None
    encrypted = {True: "encrypted", False: "not encrypted", None: "not connected"}[in_use]
    if host.startswith("/") or host in LOCAL_HOSTS:
        report.add("tls", "ok", f"local connection ({host or 'socket'}), sslmode={mode}, {encrypted}")
        return
    if mode == "verify-full":
        report.add("tls", "ok", f"sslmode=verify-full to {host}, {encrypted}")
        return
    report.add(
        "tls",
        "warn",
        f"sslmode={mode} to the non-local host {host}, {encrypted}: the server's certificate and name are "
        "not verified",
        "set JOBKEEPER_DB_SSLMODE=verify-full and JOBKEEPER_DB_SSLROOTCERT to the server's CA certificate",
    )


def _migrations(report: Report, url: str) -> None:
    from jobkeeper.store import migrate

    head = migrate.head()
    try:
        current = migrate.current(url)
    except Exception as exc:  # Alembic wraps the driver's errors in its own
        report.add("migrations", "fail", f"cannot read the schema revision: {exc}")
        return
    if current == head:
        report.add("migrations", "ok", f"schema at {head} (head)")
    elif current is None:
        report.add("migrations", "fail", "no jobkeeper schema in this database", "run `jobkeeper db upgrade`")
    else:
        report.add(
            "migrations",
            "fail",
            f"schema at {current}, this jobkeeper expects {head}",
            "run `jobkeeper db upgrade` (or, when the database is newer, upgrade jobkeeper)",
        )


def _workers_and_handlers(
    report: Report, settings: Settings, conn: psycopg.Connection[dict[str, Any]]
) -> None:
    from jobkeeper.errors import JobkeeperError
    from jobkeeper.store import metrics, queues
    from jobkeeper.store.errors import first_line
    from jobkeeper.store.run import first_row, run_sync

    max_age = settings.ready_worker_max_age
    try:
        # WP2's workers.count_live replaces this query by name (issue 16).
        live = run_sync(conn, first_row("api_live_workers", {"max_age": max_age}))
        stats = run_sync(conn, queues.stats(None))
        unhandled = run_sync(conn, metrics.unhandled_job_types(worker_lease=max_age))
    except JobkeeperError as exc:  # the database's own words, as the other checks report them
        text = first_line(exc.__cause__ or exc)
        for name in ("workers", "queues", "handlers"):
            report.add(name, "skip", f"not checked: {text}")
        return
    count = live["live"] if live else 0
    if count:
        report.add("workers", "ok", f"{count} live (heartbeat within {max_age:g} s)")
    else:
        report.add(
            "workers",
            "fail",
            f"no live worker (none sent a heartbeat within {max_age:g} s): jobs are not processed",
            "start `jobkeeper worker --import YOUR.TASKS` (or `jobkeeper up`)",
        )
    paused = [q for q in stats if q.paused and q.waiting]
    for q in paused:
        report.add(
            "queues",
            "warn",
            f"queue {q.name} is paused with {q.waiting} jobs waiting",
            f"`jobkeeper queues resume {q.name}` when it should run again",
        )
    if not paused:
        report.add("queues", "ok", f"{len(stats)} queues, none paused with jobs waiting")
    if not count:
        report.add("handlers", "skip", "not checked: no live worker")
        return
    for row in unhandled:
        report.add(
            "handlers",
            "fail",
            f"{row['waiting']} ready {row['type']} jobs in queue {row['queue']}: "
            "no live worker has a handler",
            f"run a worker with --import MODULE where MODULE defines @task({row['type']!r}), "
            f"serving queue {row['queue']}",
        )
    if not unhandled:
        report.add("handlers", "ok", "every ready job's type has a live worker with its handler")


def _api_auth(report: Report, settings: Settings) -> None:
    from jobkeeper.api.app import check_settings
    from jobkeeper.devauth import KEY_FILE, needs_dev_auth

    if needs_dev_auth(settings):
        report.add(
            "api auth",
            "ok",
            f"embedded development mode: `jobkeeper up` keeps a secret in {settings.data_dir / KEY_FILE}",
        )
        return
    try:
        check_settings(settings)
    except ConfigError as exc:
        report.add("api auth", "fail", str(exc), "see docs/configuration.md, or --no-api where no API runs")
        return
    algorithm = "HS256 secret" if settings.jwt_secret else "public key"
    report.add("api auth", "ok", f"JWT with a {algorithm}, audience {settings.jwt_audience!r}")


def _providers(report: Report, settings: Settings) -> None:
    """Built-in processors whose provider is not configured here: a worker with this environment does not
    run them, their jobs wait (one line per group of types that lack the same settings)."""
    from jobkeeper.processors import configuration_problems, register_builtins
    from jobkeeper.worker import Registry

    registry = Registry()
    register_builtins(registry, settings)
    grouped: dict[tuple[str, ...], list[str]] = {}
    for job_type, problems in sorted(configuration_problems(registry, settings).items()):
        grouped.setdefault(tuple(problems), []).append(job_type)
    for missing, types in grouped.items():
        report.add(
            "providers",
            "warn",
            f"{', '.join(types)} jobs are not run by a worker with this environment (they wait)",
            "; ".join(missing) + " (docs/processors.md; ignore for types you do not use)",
        )
    if not grouped:
        report.add("providers", "ok", "every built-in processor has its provider configured")
