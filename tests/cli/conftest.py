"""Fixtures of the CLI tests: the command run in-process (click's runner) on the test's own database,
a real worker in a thread, and a history of jobs that real workers finished."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from jobkeeper import JobContext, PermanentError, SyncClient, Worker
from jobkeeper.cli import main
from jobkeeper.worker import Registry
from tests.support import client_settings, declare_types, wait_for

Run = Callable[..., Result]


def cli_env(db_url: str, **extra: str | None) -> dict[str, str | None]:
    """The environment of one invocation: DATABASE_URL, nothing else of jobkeeper's unless given."""
    import os

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("JOBKEEPER_")}
    return env | {"DATABASE_URL": db_url} | extra


def runner(db_url: str) -> Run:
    def invoke(
        *args: str, input: str | bytes | None = None, env: dict[str, str | None] | None = None
    ) -> Result:
        return CliRunner().invoke(main, list(args), input=input, env=cli_env(db_url, **(env or {})))

    return invoke


@pytest.fixture
def run(db_url: str) -> Run:
    """`run("jobs", "list", input=..., env={...})`: the CLI in-process on this test's own database."""
    return runner(db_url)


@pytest.fixture
def run_shared(shared_db_url: str) -> Run:
    """The CLI on the session's shared database, for commands that change nothing."""
    return runner(shared_db_url)


def output_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.output, result.stderr)
    return json.loads(result.stdout)


def query(db_url: str, sql: Any, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


@contextmanager
def running_worker(db_url: str, registry: Registry, **options: Any) -> Iterator[Worker]:
    """A real worker with `registry`'s handlers, running on an event loop in a thread of its own (so
    that the synchronous CLI can run beside it); stopped on exit."""
    started = threading.Event()
    stop = threading.Event()
    failures: list[BaseException] = []
    box: list[Worker] = []

    async def body() -> None:
        options.setdefault("poll_interval", 0.05)
        options.setdefault("shutdown_timeout", 0.0)
        options.setdefault("concurrency", 4)
        worker = Worker(db_url, settings=client_settings(), registry=registry, **options)
        async with worker:
            box.append(worker)
            started.set()
            await asyncio.to_thread(stop.wait)

    def thread_main() -> None:
        try:
            asyncio.run(body())
        except BaseException as exc:  # reported to the test below
            failures.append(exc)
            started.set()

    thread = threading.Thread(target=thread_main, name="test-worker", daemon=True)
    thread.start()
    try:
        assert started.wait(15), "the worker did not start within 15 s"
        if failures:
            raise failures[0]
        yield box[0]
    finally:
        stop.set()
        thread.join(15)
    if failures:
        raise failures[0]


def handlers() -> Registry:
    registry = Registry()

    @registry.task("echo", queue="background")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"echo": payload}

    @registry.task("boom", queue="background")
    async def boom(payload: dict[str, Any], ctx: JobContext) -> None:
        raise PermanentError("card declined")

    @registry.task("slow", queue="background")
    async def slow(payload: dict[str, Any], ctx: JobContext) -> None:
        await asyncio.sleep(payload["seconds"])  # until cancelled

    return registry


def statuses(db_url: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = query(db_url, "SELECT id, status FROM jobkeeper.jobs WHERE id = ANY(%s)", (ids,))
    return {row[0]: row[1] for row in rows}


@dataclass(frozen=True)
class History:
    completed: uuid.UUID
    failed: uuid.UUID
    pending: uuid.UUID
    dead_letter: uuid.UUID


@pytest.fixture
def history(db_url: str) -> History:
    """A job a real worker completed, one it failed for good (dead-lettered), and one still pending."""
    declare_types(db_url, "echo", "boom", "later")
    with SyncClient(db_url, settings=client_settings()) as client:
        done = client.enqueue("echo", {"order": {"id": "o-1"}, "n": 1})
        bad = client.enqueue("boom", {"order": {"id": "o-2"}, "n": 2})
        with running_worker(db_url, handlers()):
            wait_for(
                lambda: statuses(db_url, [done.id, bad.id]) == {done.id: "completed", bad.id: "failed"},
                timeout=15,
                what="the worker to finish both jobs",
            )
        later = client.enqueue("later", {"n": 3}, delay=3600)
    (dead,) = query(db_url, "SELECT id FROM jobkeeper.dead_letter_jobs WHERE job_id = %s", (bad.id,))
    return History(completed=done.id, failed=bad.id, pending=later.id, dead_letter=dead[0])
