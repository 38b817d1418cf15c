"""What the admin commands share: exit statuses, error translation, a database session, output, and
parsers for durations, instants and payload filters.

Exit statuses (docs/cli.md): 0 done; 1 the operation failed, or what it names does not exist, or is
not in a state that allows it; 2 usage, configuration or input error; 3 the database is unreachable;
124 `jobs wait` timed out. Every error is one line on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from jobkeeper.config import Settings
from jobkeeper.errors import (
    ConfigError,
    DatabaseUnavailableError,
    InvalidJobError,
    JobkeeperError,
    StatementTimeoutError,
)

if TYPE_CHECKING:
    from jobkeeper.store.run import Steps, SyncConnection

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 124


class BadInput(click.ClickException):
    """Malformed input (a JSON line, an option value): one line, exit status 2."""

    exit_code = EXIT_USAGE


class DatabaseUnreachable(click.ClickException):
    """No connection to the database: exit status 3."""

    exit_code = EXIT_UNREACHABLE


class Failed(click.ClickException):
    """The operation failed or its object does not exist: exit status 1."""

    exit_code = EXIT_FAILED


def confirm_or_refuse(question: str, refused: str) -> None:
    """Ask `question` (y/N); a no, or no answer at all (end of input), is a refused confirmation: exit
    status 2 with `refused` (click's own abort would exit 1, "the operation failed"). The question goes to
    stderr, so that stdout holds only the output (`--json`)."""
    try:
        answer = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input: the question's line was left open
        click.echo(err=True)
        answer = False
    if not answer:
        raise BadInput(f"not confirmed: {refused}")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn the errors a command can meet into one-line messages with their exit status. The store has
    translated the database's errors into jobkeeper's (`jobkeeper.store.errors`)."""
    try:
        yield
    except (ConfigError, InvalidJobError) as exc:
        raise BadInput(str(exc)) from None
    except StatementTimeoutError as exc:  # an unavailable database, but the statement reached it
        raise Failed(str(exc)) from None
    except DatabaseUnavailableError as exc:
        raise DatabaseUnreachable(str(exc)) from None
    except JobkeeperError as exc:
        raise Failed(str(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """One autocommit connection (rows as dicts) to the service's database, and how it was reached."""

    conn: SyncConnection
    url: str
    settings: Settings

    def run(self, steps: Steps[T]) -> T:
        """Run a store operation on the session's connection; its errors come as jobkeeper's."""
        from jobkeeper.store.run import run_sync

        return run_sync(self.conn, steps)

    def now(self) -> datetime:
        from jobkeeper.store import server

        return self.run(server.database_now())


@contextlib.contextmanager
def session(settings: Settings | None = None) -> Iterator[Session]:
    """A session on DATABASE_URL, or on the embedded server (started for the command when it is not
    running, and stopped again after it), with the settings' timeouts and TLS options."""
    from jobkeeper.process.database import open_database
    from jobkeeper.store.run import connect

    settings = settings or load_settings()
    with translated_errors(), open_database(settings) as database:
        conn = connect(database.url, settings)
        with conn:
            yield Session(conn=conn, url=database.url, settings=settings)


# -- output ------------------------------------------------------------------------------------------


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, indent=2, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | timedelta):
        return str(value)
    return str(value)


def cell(value: Any) -> str:
    """A value as a table shows it: times to the second in UTC, no value as '-'."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def emit_rows(
    rows: Sequence[dict[str, Any]],
    as_json: bool,
    columns: Sequence[str],
    display: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """A JSON array of the rows (every field), or a table of `columns` of the rows as `display` shows
    them (it may add columns made for reading)."""
    if as_json:
        click.echo(to_json(list(rows)))
        return
    if not rows:
        click.echo("(none)")
        return
    shown = [display(row) for row in rows] if display is not None else rows
    texts = [[cell(row.get(c)) for c in columns] for row in shown]
    widths = [max(len(c), *(len(t[i]) for t in texts)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for text in texts:
        click.echo("  ".join(t.ljust(w) for t, w in zip(text, widths, strict=True)).rstrip())


def emit_object(row: Mapping[str, Any], as_json: bool, fields: Sequence[str]) -> None:
    """A JSON object (every field), or `field: value` lines of `fields`."""
    if as_json:
        click.echo(to_json(dict(row)))
        return
    width = max(len(f) for f in fields)
    for name in fields:
        click.echo(f"{name.ljust(width)}  {cell(row.get(name))}")


def truncate(text: str | None, width: int = 60) -> str | None:
    if text is None:
        return None
    line = text.splitlines()[0] if text.strip() else text
    return line if len(line) <= width else line[: width - 1] + "…"


# -- parameter types ---------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `1.5m`, `2h`, `7d`, `1w` or `250ms`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 30, 30s, 15m, 2h, 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, without inf and nan (which it lets through: nan compares false with any bound,
    and `1e400` is inf), so that a rate or a window stored in the database is a real number."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Instant(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 time (no zone means UTC), or a duration meaning that long ago (by the database's
    clock, resolved with `resolve_instant`)."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime | timedelta:
        if isinstance(value, datetime | timedelta):
            return value
        text = str(value).strip()
        with contextlib.suppress(ValueError):
            seconds = parse_duration(text)
            if seconds > MAX_AGO_SECONDS:
                self.fail(f"{text!r} is more than 1,000 years ago", param, ctx)
            return timedelta(seconds=seconds)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is neither an ISO 8601 time nor a duration ago (e.g. 2h)", param, ctx)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


MAX_AGO_SECONDS = 1000 * 365.25 * 86400.0
"""The longest duration `Instant` takes (a larger one overflowed `timedelta` or `now - ago`)."""


def resolve_instant(value: datetime | timedelta | None, now: datetime) -> datetime | None:
    if isinstance(value, timedelta):
        return now - value
    return value


def payload_filter(pairs: Sequence[str]) -> dict[str, Any] | None:
    """`key=value` pairs as one JSON document for containment (`@>`). The value is JSON when it parses
    as JSON (`amount=1200` is a number, `vip=true` a boolean, `code="7"` a string), text otherwise; dots
    in the key address nested fields (`customer.id=c-1`)."""
    if not pairs:
        return None
    document: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip() or any(not part for part in key.split(".")):
            raise BadInput(f"--where {pair!r}: expected KEY=VALUE, e.g. --where orderId=o-42")
        try:
            value: Any = json.loads(raw, parse_constant=_not_json)
        except ValueError:  # not JSON (NaN and Infinity are not JSON either): the text itself
            value = raw
        except RecursionError:
            raise BadInput(f"--where {key}=…: JSON nested too deeply") from None
        node = document
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BadInput(f"--where {pair!r}: {part!r} is given both as a value and as an object")
            node = child
        if isinstance(node.get(leaf), dict):
            raise BadInput(f"--where {pair!r}: {leaf!r} is given both as a value and as an object")
        node[leaf] = value
    return document


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadInput(f"{value!r} is not a {what} (a UUID)") from None


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
TENANT_FILTER = click.option(
    "--tenant", "tenant", type=click.UUID, default=None, help="Only this tenant's (default: every tenant)."
)


def renamed(right: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """The callback of a hidden option that is the wrong word for `right`: it says which one to use
    (click alone would say "No such option" and guess nothing; docs/decisions.md)."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise click.UsageError(f"{param.opts[0]} is not an option here: use {right}", ctx)

    return refuse
