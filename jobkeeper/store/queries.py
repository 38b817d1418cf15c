"""Named SQL queries, loaded once from the `.sql` files beside this module.

A file holds queries introduced by `-- name: NAME` lines. Query text is trusted package data, so it is
typed `LiteralString` for psycopg; values always travel as parameters, never inside the text.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import LiteralString, cast

_DIR = Path(__file__).parent / "sql"
_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


@cache
def all_queries() -> dict[str, LiteralString]:
    queries: dict[str, LiteralString] = {}
    for path in sorted(_DIR.glob("*.sql")):
        parts = _NAME.split(path.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = cast(LiteralString, body.strip())
    return queries


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
    return PER_CALL in query(name)
