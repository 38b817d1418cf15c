"""The benchmarks' own named queries (bench/sql/), loaded with the package's (jobkeeper/store/sql/) so that
a name of theirs can never shadow, or be shadowed by, one of the package."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import LiteralString

from jobkeeper.store.queries import SQL_DIR, QueryInfo, load_queries


@cache
def _all() -> dict[str, QueryInfo]:
    return load_queries(SQL_DIR, Path(__file__).resolve().parent / "sql")


def bench_query(name: str) -> LiteralString:
    return _all()[name].text
