"""Helpers shared by the tests: database URLs, waiting on conditions with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit, urlunsplit


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database)))


def wait_for(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds. For waiting on other processes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "it"
) -> None:
    """Await `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def declare_types(db_url: str, *names: str, queue: str = "background") -> None:
    """Make job types of a test's own known before a worker handling them has run (as
    `jobkeeper types declare` does): enqueue refuses unknown types."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in names:
            conn.execute(
                "INSERT INTO jobkeeper.job_types (name, queue) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (name, queue),
            )
