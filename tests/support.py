"""Helpers shared by the tests: test databases and their URLs, waiting on conditions with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from jobkeeper import Settings


def client_settings() -> Settings:
    """The settings of the tests' clients and workers: a small pool, a short wait for a connection."""
    return Settings.from_env({}, pool_min=1, pool_max=4, acquire_timeout=5.0)


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database)))


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Create database `name` on the server of `admin_url` (a clone of `template`, if given); its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        conn.execute(statement)
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name`, closing whatever connections are still open on it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


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
