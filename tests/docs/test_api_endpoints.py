"""docs/api.md's table of endpoints lists every route of the API once, each with its full path."""

from __future__ import annotations

import re
from pathlib import Path

from jobkeeper.server import create_app
from tests.api.support import api_settings

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PREFIX = "/api/v1/queue"
ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)`( \*\(root\)\*)? \|")


def _documented() -> list[tuple[str, str]]:
    section = API_MD.read_text().split("## Endpoints", 1)[1].split("\n### ", 1)[0]
    rows = []
    for line in section.splitlines():
        row = ROW.match(line)
        if row is not None:
            method, path, root = row.groups()
            rows.append((method, path if root else PREFIX + path))
    return rows


def test_the_endpoint_table_lists_every_route_once_with_its_full_path() -> None:
    documented = _documented()
    assert len(documented) == len(set(documented)), sorted(r for r in documented if documented.count(r) > 1)
    spec = create_app(api_settings(), "postgresql://unused@127.0.0.1/unused").openapi()
    served = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert set(documented) == served
