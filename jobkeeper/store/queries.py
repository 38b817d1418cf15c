"""Named SQL queries, loaded once from the `.sql` files beside this module, one file per subject.

A file holds queries introduced by `-- name: NAME` lines. Right after it come the query's header keys,
`-- key: value` lines, then its why-comment and its text:

- `-- plan: per call`: run the query unprepared, so the server plans it for the values it gets each time.
  Optional filters written `%(x)s IS NULL OR …` can use an index only in such a plan, and a prepared
  statement may switch to one generic plan for all values after five runs (docs/benchmarks.md#named-queries).

A `-- part: NAME` line introduces, instead of a query, lines that several queries share (of any file);
a line `-- use: NAME` in a query (or a part) stands for them, each indented as that line is. The text
sent is the same as if they were written out.

An unknown key or part, or a name defined twice, fails the load. Only the store runs queries by name
(`jobkeeper.store.run.named`); outside it, code calls the store's operations.

Query text is trusted package data, so it is typed `LiteralString` for psycopg; values always travel as
parameters, never inside the text. Whole-line comments are dropped from the text sent to the server:
psycopg caches the conversion of a query's `%(name)s` placeholders only for texts of at most 4,096 bytes,
which the hot queries fit only without their comments (docs/benchmarks.md#named-queries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import LiteralString

SQL_DIR = Path(__file__).parent / "sql"
_NAME = re.compile(r"^-- (name|part): ([a-z_]+)\s*$", re.MULTILINE)
_USE = re.compile(r"^(\s*)-- use: ([a-z_]+)\s*$")
_KEY = re.compile(r"^-- ([a-z_]+): (.*?)\s*$")
_COMMENT = re.compile(r"^\s*--")


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """One named query: `text` as sent (without comments) and what its header keys say."""

    name: str
    text: LiteralString
    per_call: bool = False


def load_queries(*dirs: Path) -> dict[str, QueryInfo]:
    """Every query of the `.sql` files in `dirs`, by name. The benchmarks load the package's
    directory with theirs, so that a name of theirs cannot shadow one of the package."""
    bodies: dict[str, tuple[str, Path]] = {}
    shared: dict[str, list[str]] = {}
    for path in sorted(p for d in dirs for p in d.glob("*.sql")):
        pieces = _NAME.split(path.read_text(encoding="utf-8"))
        for kind, name, body in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
            if name in bodies or name in shared:
                raise RuntimeError(f"query or part {name!r} is defined twice ({path.name})")
            if kind == "part":
                shared[name] = body.strip("\n").splitlines()
            else:
                bodies[name] = (body.strip(), path)
    return {
        name: _parse(name, "\n".join(_expand(body.splitlines(), shared, name)), path)
        for name, (body, path) in bodies.items()
    }


def _expand(lines: list[str], shared: dict[str, list[str]], name: str, depth: int = 0) -> list[str]:
    """`lines` with each `-- use: PART` line replaced by the part's lines, indented as it is."""
    out: list[str] = []
    for line in lines:
        match = _USE.match(line)
        if match is None:
            out.append(line)
            continue
        indent, part = match.groups()
        if part not in shared or depth > 8:
            raise RuntimeError(f"query {name!r}: no part {part!r} (or parts that use each other)")
        out += [indent + used if used else used for used in _expand(shared[part], shared, name, depth + 1)]
    return out


def _parse(name: str, body: str, path: Path) -> QueryInfo:
    lines = body.splitlines()
    per_call = False
    header = 0
    for line in lines:
        match = _KEY.match(line)
        if match is None:
            break
        header += 1
        key, value = match.groups()
        if key == "plan" and value == "per call":
            per_call = True
        else:
            raise RuntimeError(f"query {name!r} ({path.name}): unknown header `-- {key}: {value}`")
    text = "\n".join(line for line in lines[header:] if not _COMMENT.match(line))
    # mypy treats LiteralString as str here; the text is package data, never built from input.
    return QueryInfo(name, text, per_call)


@cache
def _infos() -> dict[str, QueryInfo]:
    return load_queries(SQL_DIR)


def query_infos() -> dict[str, QueryInfo]:
    """Each query by its name."""
    return _infos()


@cache
def all_queries() -> dict[str, LiteralString]:
    """Each query as sent, by its name."""
    return {name: info.text for name, info in query_infos().items()}


def info(name: str) -> QueryInfo:
    """The query named `name` with its header keys."""
    try:
        return _infos()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in {SQL_DIR}") from None
