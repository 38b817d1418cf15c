"""Operations of the `generate-report` job type (sql/reports.sql): queue activity over a period, read in
one snapshot, on a read-only connection of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg

from jobkeeper.store.errors import translate
from jobkeeper.store.run import Atomic, Steps, named, run

T = TypeVar("T")
Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Sections:
    """The report's rows, section by section (the queries of sql/reports.sql)."""

    throughput: Rows
    enqueued: Rows
    failures: Rows
    dead_letters: Rows
    recent_dead_letters: Rows
    latency: Rows


def collect(
    *,
    start: datetime,
    end: datetime,
    bucket: str,
    tenant_id: uuid.UUID | None,
    queues: Sequence[str] | None,
    recent: int,
) -> Steps[Sections]:
    """Every section of the report on [start, end), bucketed by `bucket` ('hour' or 'day'), for one
    tenant (None: all) and some queues (None: all), with the `recent` latest dead letters. One
    transaction under REPEATABLE READ, so that the sections agree."""
    params = {
        "from": start,
        "to": end,
        "bucket": bucket,
        "tenant_id": tenant_id,
        "queues": [*queues] if queues is not None else None,
    }
    sections: Sections = yield Atomic(_sections(params, recent), isolation="repeatable read")
    return sections


def _sections(params: dict[str, Any], recent: int) -> Steps[Sections]:
    throughput = yield named("report_throughput", params)
    enqueued = yield named("report_enqueued", params)
    failures = yield named("report_failures", params)
    dead_letters = yield named("report_dead_letters", params)
    latency = yield named("report_latency", params)
    recent_rows = yield named("report_recent_dead_letters", params | {"limit": recent})
    return Sections(throughput, enqueued, failures, dead_letters, recent_rows, latency)


class ReadOnly:
    """A read-only connection of a report's own: `run` runs an operation on it."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def run(self, steps: Steps[T]) -> T:
        return await run(self._conn, steps)


@asynccontextmanager
async def read_only(url: str, **connection: Any) -> AsyncIterator[ReadOnly]:
    """A read-only autocommit connection to `url` (`collect` sets its own isolation); `connection` are
    psycopg's connection options (the settings' `connection_kwargs()`)."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, **connection)
    except psycopg.Error as exc:
        raise translate(exc) from exc
    async with conn:
        try:
            await conn.set_read_only(True)
        except psycopg.Error as exc:
            raise translate(exc) from exc
        yield ReadOnly(conn)
