"""The job list's filter: read from a query string or a form, turned into the store's `JobFilter` and back.

Times from `<input type="datetime-local">` carry no zone and are read as UTC. The payload filter is one
`field = value` pair (string equality; dots reach into nested objects) and/or a JSON object the payload
must contain; both become one containment document (the store's `JobFilter.payload`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobkeeper.api import problems
from jobkeeper.api.problems import FieldError
from jobkeeper.api.schemas import QUEUE_PATTERN
from jobkeeper.dashboard.web import Viewer
from jobkeeper.payloads import MAX_DEPTH
from jobkeeper.store import jobs
from jobkeeper.types import JobStatus

MAX_TEXT = 4000
_QUEUE = re.compile(QUEUE_PATTERN)
FIELDS = ("status", "queue", "type", "tenant", "after", "before", "field", "value", "contains")


def _time(name: str, raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise problems.invalid([FieldError(name, f"is not a date and time: {raw!r}")]) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _containment(path_text: str, value: str, contains: str) -> dict[str, Any] | None:
    document: dict[str, Any] = {}
    if contains:
        try:
            parsed = json.loads(contains)
        except ValueError as exc:
            raise problems.invalid([FieldError("contains", f"is not valid JSON: {exc}")]) from None
        except RecursionError:  # a 500 before (and no answer at all past ~1,500 levels)
            raise problems.invalid([FieldError("contains", "is nested too deeply")]) from None
        if not isinstance(parsed, dict):
            raise problems.invalid([FieldError("contains", 'must be a JSON object, e.g. {"amount": 10}')])
        document = parsed
    if path_text:
        path = path_text.split(".")
        if any(not part for part in path) or len(path) > MAX_DEPTH:
            raise problems.invalid([FieldError("field", "must name a payload field, e.g. orderId")])
        node = document
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise problems.invalid([FieldError("field", "conflicts with the JSON filter")])
            node = child
        node[path[-1]] = value
    return document or None


@dataclass(frozen=True, slots=True)
class JobFilter:
    statuses: list[str] = field(default_factory=list)
    queue: str = ""
    type: str = ""
    tenant: str = ""
    after: str = ""
    before: str = ""
    field: str = ""
    value: str = ""
    contains: str = ""

    @classmethod
    def read(cls, pairs: Sequence[tuple[str, str]]) -> JobFilter:
        values: dict[str, str] = {}
        statuses: list[str] = []
        for key, raw in pairs:
            text = raw.strip()
            if "\x00" in text or len(text) > MAX_TEXT:
                raise problems.invalid([FieldError(key, "is too long or contains NUL")])
            if key == "status":
                if text:
                    statuses.append(text)
            elif key in FIELDS and key not in values:
                values[key] = text
        return cls(statuses=statuses, **values)

    def select(self, viewer: Viewer) -> jobs.JobFilter:
        """The jobs this filter selects for `viewer`; 422 problems name what is wrong."""
        errors: list[FieldError] = []
        known = {s.value for s in JobStatus}
        for status in self.statuses:
            if status not in known:
                errors.append(FieldError("status", f"unknown state {status!r}"))
        if self.queue and not _QUEUE.match(self.queue):
            errors.append(FieldError("queue", "is not a queue name"))
        if len(self.type) > 200:
            errors.append(FieldError("type", "is longer than 200 characters"))
        tenant = viewer.tenant_filter(self.tenant, errors)
        if errors:
            raise problems.invalid(errors)
        return jobs.JobFilter(
            tenant_id=tenant,
            statuses=self.statuses or None,
            type=self.type or None,
            queue=self.queue or None,
            created_after=_time("after", self.after) if self.after else None,
            created_before=_time("before", self.before) if self.before else None,
            payload=_containment(self.field, self.value, self.contains),
        )

    def pairs(self) -> list[tuple[str, str]]:
        """The filter as query-string pairs (for paging links and the bulk action's hidden fields)."""
        found = [("status", s) for s in self.statuses]
        for name in FIELDS[1:]:
            value = getattr(self, name)
            if value:
                found.append((name, value))
        return found

    @property
    def active(self) -> bool:
        return bool(self.pairs())
