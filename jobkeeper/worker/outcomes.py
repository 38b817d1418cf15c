"""How an attempt ended, as the batched outcome writer stores it: kind, result, error entry, delay."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from enum import StrEnum

from jobkeeper.store.outcomes import JobRef
from jobkeeper.types import JsonValue

MAX_MESSAGE = 2000
MAX_TRACEBACK = 4000


class Kind(StrEnum):
    COMPLETE = "complete"
    RETRY = "retry"
    """Pending again after `delay`; the attempt counts (failed once attempts reach max_attempts)."""
    FAIL = "fail"
    """Permanent: failed now, dead-lettered."""
    CANCEL = "cancel"
    SNOOZE = "snooze"
    """Pending again after `delay`; the attempt is given back."""
    RELEASE = "release"
    """Pending again now, the attempt given back (graceful shutdown)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    job: JobRef
    kind: Kind
    result: str | None = None
    """JSON text of the handler's return value (complete only); None stores SQL NULL."""
    error: str | None = None
    """JSON text of the error entry {"type", "message", "traceback"}; the database adds "at" and "attempt"."""
    delay: float = 0.0


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL, and jsonb rejects \u0000.
    return text.replace("\x00", "\\x00")


def error_entry(type_name: str, message: str, tb: str | None = None) -> str:
    message = _clean(message)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    tail = None
    if tb:
        tb = _clean(tb)
        tail = tb if len(tb) <= MAX_TRACEBACK else "…" + tb[-(MAX_TRACEBACK - 1) :]
    return json.dumps({"type": type_name, "message": message, "traceback": tail}, ensure_ascii=False)


def exception_entry(exc: BaseException, *, message: str | None = None) -> str:
    """The error entry of an exception: its class name, message and traceback tail."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return error_entry(type(exc).__name__, message if message is not None else str(exc), tb)


def encode_result(value: JsonValue) -> str | None:
    """The result as JSON text; raises TypeError or ValueError when it cannot be stored."""
    if value is None:
        return None
    text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        raise ValueError("the result contains a NUL character (\\u0000), which PostgreSQL cannot store")
    return text
