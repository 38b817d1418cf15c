"""`jobkeeper enqueue`: one job from arguments, or many from a JSON-lines file, through the client's
`enqueue_many` (the same validation and SQL as the Python API and the HTTP API).

A file is read, parsed and enqueued a chunk of lines at a time; each chunk is one statement, all or
none. At the first malformed or invalid line the command stops with exit status 2, naming the line:
the chunks before it stay enqueued, nothing of its own chunk is, and the message says where to resume
(`--start-line`). With `--atomic` the whole file is one transaction: any bad line, nothing enqueued.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import click

from jobkeeper.cli_common import (
    JSON_OPTION,
    BadInput,
    DatabaseUnreachable,
    Duration,
    Failed,
    emit_object,
    load_settings,
    renamed,
    to_json,
    translated_errors,
)
from jobkeeper.errors import DatabaseError, DatabaseUnavailableError, InvalidJobError

if TYPE_CHECKING:
    import psycopg

    from jobkeeper.client import SyncClient
    from jobkeeper.types import Job

MAX_CHUNK = 5000
PROGRESS_MIN_BYTES = 1 << 20


@click.command()
@click.argument("job_type", required=False, metavar="[TYPE]")
@click.option(
    "--file",
    "source",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="Enqueue the jobs of a JSON-lines file, one object per line ('-': stdin).",
)
@click.option("--queue", default=None, help="Queue (default: the type's home queue).")
@click.option("--data", default=None, metavar="JSON", help="The job's data (its payload), a JSON object.")
@click.option(
    "--payload", "old_payload", hidden=True, expose_value=False, callback=renamed("--data (the job's data)")
)
@click.option(
    "--data-file", type=click.File("r", encoding="utf-8"), default=None, help="Read the payload from a file."
)
@click.option("--priority", type=click.IntRange(1, 10), default=None, help="1..10, higher runs first.")
@click.option(
    "--delay", type=Duration(), default=None, help="Run no earlier than this from now (e.g. 90s, 2h)."
)
@click.option("--attempts", type=click.IntRange(1, 1000), default=None, help="Attempt budget (max_attempts).")
@click.option("--idempotency-key", default=None, help="A duplicate key returns the original job.")
@click.option(
    "--depends-on",
    "depends_on",
    type=click.UUID,
    multiple=True,
    metavar="ID",
    help="Run only after job ID has completed (repeat for several; cancelled if one fails).",
)
@click.option(
    "--tenant", "tenant", type=click.UUID, default=None, help="Tenant (default: JOBKEEPER_DEFAULT_TENANT)."
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1, MAX_CHUNK),
    default=1000,
    show_default=True,
    help="--file: lines per statement.",
)
@click.option(
    "--start-line", type=click.IntRange(min=1), default=1, help="--file: skip the lines before this one."
)
@click.option("--atomic", is_flag=True, help="--file: all lines in one transaction, all or none.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="--file: a progress bar on stderr (default: for files of 1 MiB or more when stderr is a terminal).",
)
@JSON_OPTION
def enqueue(
    job_type: str | None,
    source: IO[str] | None,
    queue: str | None,
    data: str | None,
    data_file: IO[str] | None,
    priority: int | None,
    delay: float | None,
    attempts: int | None,
    idempotency_key: str | None,
    depends_on: tuple[uuid.UUID, ...],
    tenant: uuid.UUID | None,
    chunk_size: int,
    start_line: int,
    atomic: bool,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Enqueue a job of TYPE, or every job of a JSON-lines --file.

    Each line of the file is an object with the keys of `Client.enqueue_many`: type (required), payload,
    queue, priority, delay (seconds), run_at (ISO 8601 with a zone), max_attempts, idempotency_key,
    tenant_id, depends_on (a list of job ids). The options --queue, --priority, --delay, --attempts and
    --tenant fill in what a line leaves out. Exit status 2 for malformed input, naming its line.
    """
    defaults = {
        key: value
        for key, value in {
            "queue": queue,
            "priority": priority,
            "delay": delay,
            "max_attempts": attempts,
            "tenant_id": tenant,
        }.items()
        if value is not None
    }
    if source is not None:
        if (
            job_type is not None
            or data is not None
            or data_file is not None
            or idempotency_key is not None
            or depends_on
        ):
            raise click.UsageError(
                "--file takes no TYPE, --data, --data-file, --idempotency-key or --depends-on "
                "(give depends_on on each line)"
            )
        _enqueue_file(source, defaults, chunk_size, start_line, atomic, progress, as_json)
        return
    if job_type is None:
        raise click.UsageError("give a job TYPE, or --file with one job per line")
    if data is not None and data_file is not None:
        raise click.UsageError("give --data or --data-file, not both")
    payload = _payload(
        data if data_file is None else _read_text(data_file), "--data" if data_file is None else "--data-file"
    )
    item: dict[str, Any] = defaults | {"type": job_type, "payload": payload}
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    if depends_on:
        item["depends_on"] = list(depends_on)
    with _client() as client:
        (job,) = client.enqueue_many([item])
    emit_object(
        _job_dict(job),
        as_json,
        [
            "id",
            "status",
            "queue",
            "type",
            "priority",
            "max_attempts",
            "scheduled_at",
            "idempotency_key",
            "deduplicated",
        ],
    )


def _payload(text: str | None, option: str) -> Any:
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{option} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise BadInput(f"{option}: JSON nested too deeply") from None


def _job_dict(job: Job) -> dict[str, Any]:
    return dataclasses.asdict(job)


@contextlib.contextmanager
def _client() -> Iterator[SyncClient]:
    import psycopg

    from jobkeeper.client import SyncClient
    from jobkeeper.database import open_database

    settings = load_settings()
    settings = dataclasses.replace(settings, pool_min=1, pool_max=max(1, min(settings.pool_max, 2)))
    with translated_errors(), open_database(settings) as database:
        # One plain connection first: an unreachable server fails at once with libpq's own message,
        # where the pool would retry until its acquire timeout.
        psycopg.connect(database.url, **settings.connection_kwargs()).close()
        client = SyncClient(database.url, settings=settings)
        try:
            yield client
        finally:
            client.close()


@dataclasses.dataclass(slots=True)
class _Tally:
    lines: int = 0
    enqueued: int = 0
    duplicates: int = 0
    committed_through: int = 0
    """The last line number whose job is committed (0: none)."""


def _enqueue_file(
    source: IO[str],
    defaults: dict[str, Any],
    chunk_size: int,
    start_line: int,
    atomic: bool,
    progress: bool | None,
    as_json: bool,
) -> None:
    started = time.monotonic()
    tally = _Tally(committed_through=start_line - 1)
    size = _regular_file_size(source)
    if progress is None:
        progress = size is not None and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    progress = progress and size is not None  # the bar measures bytes of a regular file
    with contextlib.ExitStack() as stack:
        bar: Any = None
        if progress:
            bar = stack.enter_context(
                click.progressbar(length=size, label="enqueueing", file=sys.stderr, show_pos=False)
            )
        client = stack.enter_context(_client())
        conn: psycopg.Connection[Any] | None = None
        if atomic:
            conn = stack.enter_context(client.pool.connection())
            stack.enter_context(conn.transaction())
        for chunk, consumed in _chunks(source, chunk_size, start_line, defaults, tally, atomic):
            jobs = _enqueue_chunk(client, chunk, conn, tally, atomic)
            tally.enqueued += sum(not job.deduplicated for job in jobs)
            tally.duplicates += sum(job.deduplicated for job in jobs)
            if not atomic:
                tally.committed_through = chunk[-1][0]
            if bar is not None:
                bar.update(consumed)
    summary = {
        "lines": tally.lines,
        "enqueued": tally.enqueued,
        "duplicates": tally.duplicates,
        "seconds": round(time.monotonic() - started, 3),
    }
    if as_json:
        click.echo(to_json(summary))
    else:
        click.echo(
            f"enqueued {summary['enqueued']} jobs ({summary['duplicates']} duplicates of existing jobs) "
            f"from {summary['lines']} lines in {summary['seconds']:.2f} s"
        )


def _read_text(source: IO[str]) -> str:
    try:
        return source.read()
    except UnicodeDecodeError as exc:
        raise BadInput(f"--data-file: not UTF-8 text ({exc.reason})") from None


def _regular_file_size(source: IO[str]) -> int | None:
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError, NotImplementedError):
        return None
    import stat

    return info.st_size if stat.S_ISREG(info.st_mode) else None


Numbered = list[tuple[int, dict[str, Any]]]


def _chunks(
    source: IO[str], chunk_size: int, start_line: int, defaults: dict[str, Any], tally: _Tally, atomic: bool
) -> Iterator[tuple[Numbered, int]]:
    """Chunks of (line number, job) and the bytes they took; a malformed line stops everything."""
    chunk: Numbered = []
    consumed = 0
    for number, text in _numbered_lines(source, tally, atomic):
        consumed += len(text.encode("utf-8", errors="surrogatepass"))
        if number < start_line or not text.strip():
            continue
        tally.lines += 1
        try:
            chunk.append((number, defaults | _line_job(text)))
        except ValueError as exc:
            raise _stopped(number, str(exc), tally, atomic) from None
        if len(chunk) == chunk_size:
            yield chunk, consumed
            chunk, consumed = [], 0
    if chunk:
        yield chunk, consumed


def _numbered_lines(source: IO[str], tally: _Tally, atomic: bool) -> Iterator[tuple[int, str]]:
    """The file's lines with their numbers; bytes that are not UTF-8 stop everything, as a bad line does
    (the text is decoded a block at a time, so the bad bytes are on the line named or a later one)."""
    number = 0
    lines = iter(source)
    while True:
        try:
            text = next(lines)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _stopped(
                number + 1, f"not UTF-8 text ({exc.reason}) on this line or a later one", tally, atomic
            ) from None
        number += 1
        yield number, text


def _line_job(text: str) -> dict[str, Any]:
    try:
        job = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(job, dict):
        raise ValueError(
            'expected a JSON object such as {"type": "send-email", "payload": {}}, '
            f"got {text.strip()[:40]}"
        )
    run_at = job.get("run_at")
    if isinstance(run_at, str):
        try:
            moment = datetime.fromisoformat(run_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"run_at: {run_at!r} is not an ISO 8601 time") from None
        job["run_at"] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return job


def _enqueue_chunk(
    client: SyncClient, chunk: Numbered, conn: psycopg.Connection[Any] | None, tally: _Tally, atomic: bool
) -> list[Job]:
    try:
        return client.enqueue_many([job for _, job in chunk], conn=conn)
    except InvalidJobError as exc:
        if exc.index is not None:
            number, field = chunk[exc.index][0], exc.name
        elif len(chunk) == 1:
            number, field = chunk[0][0], exc.field
        else:
            first, last = chunk[0][0], chunk[-1][0]
            raise _stopped_range(first, last, str(exc), tally, atomic) from None
        raise _stopped(number, f"{field}: {exc.reason}", tally, atomic) from None
    except DatabaseError as exc:  # the server went away, a statement timed out…: say what is enqueued
        first, last = chunk[0][0], chunk[-1][0]
        kind = DatabaseUnreachable if isinstance(exc, DatabaseUnavailableError) else Failed
        raise kind(f"lines {first}-{last}: {exc}; {_outcome(tally, atomic)}") from None


def _stopped(number: int, problem: str, tally: _Tally, atomic: bool) -> BadInput:
    return BadInput(f"line {number}: {problem}; {_outcome(tally, atomic)}")


def _stopped_range(first: int, last: int, problem: str, tally: _Tally, atomic: bool) -> BadInput:
    return BadInput(f"lines {first}-{last}: {problem}; {_outcome(tally, atomic)}")


def _outcome(tally: _Tally, atomic: bool) -> str:
    if atomic or tally.enqueued + tally.duplicates == 0:
        return "nothing was enqueued"
    resume = tally.committed_through + 1
    return (
        f"the lines before line {resume} were enqueued "
        f"({tally.enqueued} jobs, {tally.duplicates} duplicates), "
        f"nothing from line {resume} on: fix it and resume with --start-line {resume}"
    )
