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
