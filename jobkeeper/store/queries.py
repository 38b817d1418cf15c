"""Named SQL queries, loaded once from the `.sql` files beside this module.

A file holds queries introduced by `-- name: NAME` lines. Query text is trusted package data, so it is
typed `LiteralString` for psycopg; values always travel as parameters, never inside the text.

Whole-line comments are dropped from the text sent to the server: psycopg caches the conversion of a
query's `%(name)s` placeholders only for texts of at most 4,096 bytes, and the claim, the outcome batch and
the bulk insert are 4.8-5.0 kB with their comments, 3.6-3.9 kB without (the conversion was 6 % of the
worker's busy samples under the drain benchmark).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import LiteralString

_DIR = Path(__file__).parent / "sql"
_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


@cache
def _sources() -> dict[str, str]:
    """Each query's text as written in its file, comments included."""
    sources: dict[str, str] = {}
    for path in sorted(_DIR.glob("*.sql")):
        parts = _NAME.split(path.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in sources:
                raise RuntimeError(f"query {name!r} is defined twice ({path.name})")
            sources[name] = body.strip()
    return sources


@cache
def all_queries() -> dict[str, LiteralString]:
    """Each query as sent: its text without whole-line comments."""
    queries: dict[str, LiteralString] = {}
    for name, body in _sources().items():
        text = "\n".join(line for line in body.splitlines() if not _COMMENT.match(line))
        queries[name] = text  # mypy treats LiteralString as str; the text is package data
    return queries


_COMMENT = re.compile(r"^\s*--")


def query(name: str) -> LiteralString:
    try:
        return all_queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in {_DIR}") from None


PER_CALL = "-- planned per call"


@cache
def planned_per_call(name: str) -> bool:
    """Whether the query is marked `-- planned per call`: run it unprepared, so the server plans it for the
    values it gets each time. Optional filters written `%(x)s IS NULL OR …` can use an index only in such a
    plan, and a prepared statement may switch to one generic plan for all values after five runs
    (measured at a million jobs: a deep page 0.3 to 0.5 s and a rare type 1 s with the generic plan,
    2 to 4 ms planned per call)."""
    return PER_CALL in _sources()[name]
