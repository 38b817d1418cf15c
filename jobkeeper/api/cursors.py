"""Opaque keyset-paging cursors: the sort key of the last item of a page, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from jobkeeper.api import problems
from jobkeeper.api.problems import FieldError

MAX_CURSOR_LENGTH = 1000


def encode(*parts: object) -> str:
    values = [p.isoformat() if isinstance(p, datetime) else str(p) for p in parts]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, count: int) -> list[str]:
    invalid = problems.invalid([FieldError("query.cursor", "is not a cursor returned by this endpoint")])
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(values, list) or len(values) != count or not all(isinstance(v, str) for v in values):
        raise invalid
    return values


def time_and_id(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    if cursor is None:
        return None, None
    at, ident = _decode(cursor, 2)
    try:
        moment = datetime.fromisoformat(at)
        key = uuid.UUID(ident)
    except ValueError:
        raise problems.invalid(
            [FieldError("query.cursor", "is not a cursor returned by this endpoint")]
        ) from None
    if moment.tzinfo is None:
        raise problems.invalid([FieldError("query.cursor", "is not a cursor returned by this endpoint")])
    return moment, key


def text_and_id(cursor: str | None) -> tuple[str | None, uuid.UUID | None]:
    if cursor is None:
        return None, None
    text, ident = _decode(cursor, 2)
    try:
        return text, uuid.UUID(ident)
    except ValueError:
        raise problems.invalid(
            [FieldError("query.cursor", "is not a cursor returned by this endpoint")]
        ) from None
