"""The API's view of `jobkeeper.payloads`: a payload's problems as field errors at their request path, and
an unknown job type as an error on `type`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobkeeper.api.problems import FieldError, field_path
from jobkeeper.catalog import Catalog
from jobkeeper.errors import UnknownJobTypeError
from jobkeeper.payloads import BUILTIN_TYPES, payload_problems


def validate_payload(job_type: str, data: dict[str, Any], prefix: Sequence[int | str]) -> list[FieldError]:
    """Every problem with `data` for a job of `job_type`; empty when it is valid."""
    return [FieldError(field_path((*prefix, *p.loc)), p.reason) for p in payload_problems(job_type, data)]


def unknown_type(
    job_type: str, catalog: Catalog, allow_unknown: bool, *, platform: bool, prefix: Sequence[int | str]
) -> FieldError | None:
    """An error on `type` unless the job type is known (or any type is allowed). Types that workers
    registered may be another tenant's: only a platform admin is told about them in a "did you mean"."""
    if allow_unknown or job_type in catalog.job_types:
        return None
    known = sorted(catalog.job_types) if platform else sorted(BUILTIN_TYPES)
    return FieldError(field_path((*prefix, "type")), UnknownJobTypeError(job_type, known).reason)
