"""The payload of each built-in job type, collected from the processors that own them: each processor's
`payload` module (`jobkeeper/processors/<name>/payload.py`) declares its types' pydantic models, the one
definition that every way in applies (the API, `Client` and `SyncClient`, the CLI, schedule creation),
that the OpenAPI schema publishes as `Payload_<Model>`, and that the processor reads its job with.

The models only validate: the payload is stored exactly as sent (no keyword stripping, no normalisation),
and parameterised SQL makes any string harmless. Field names are the camelCase names the idempotency rules
(`jobkeeper.idempotency`) read. Built-in types reject unknown fields; every type, built-in or not, rejects
keys beginning with `__` at any depth and nesting deeper than `MAX_DEPTH` (the rules kept here).

Only the light `payload` modules are imported here, never a processor (see docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from jobkeeper.errors import InvalidPayloadError, did_you_mean
from jobkeeper.processors.analytics import payload as analytics
from jobkeeper.processors.cleanup import payload as cleanup
from jobkeeper.processors.email import payload as email
from jobkeeper.processors.fields import Payload
from jobkeeper.processors.nft import payload as nft
from jobkeeper.processors.payments import payload as payments
from jobkeeper.processors.push import payload as push
from jobkeeper.processors.reports import payload as reports
from jobkeeper.processors.sms import payload as sms

MAX_DEPTH = 32

MODELS: dict[str, type[Payload]] = {
    **payments.MODELS,
    **nft.MODELS,
    **email.MODELS,
    **sms.MODELS,
    **push.MODELS,
    **analytics.MODELS,
    **cleanup.MODELS,
    **reports.MODELS,
}


BUILTIN_TYPES = frozenset(MODELS)


@dataclass(frozen=True, slots=True)
class PayloadProblem:
    """One thing wrong with a payload: where in it (keys and list indexes) and why."""

    loc: tuple[int | str, ...]
    reason: str


def path(loc: Sequence[int | str]) -> str:
    """`("data", "to", 0)` → `data.to[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_keys(data: Any) -> list[PayloadProblem]:
    """Keys beginning with `__` anywhere, and nesting deeper than MAX_DEPTH (walked without recursion)."""
    problems: list[PayloadProblem] = []
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            problems.append(PayloadProblem(loc, f"is nested deeper than {MAX_DEPTH} levels"))
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and key.startswith("__"):
                    problems.append(PayloadProblem((*loc, key), "keys beginning with __ are not accepted"))
                else:
                    stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, index)) for index, item in enumerate(value))
    return problems


def payload_problems(job_type: str, data: Any) -> list[PayloadProblem]:
    """Every problem with `data` (a dict) for a job of `job_type`; empty when it is valid."""
    problems = check_keys(data)
    if problems:
        return problems
    model = MODELS.get(job_type)
    if model is None:
        return []
    try:
        model.model_validate(data, strict=True)
    except ValidationError as exc:
        return problems_of(exc, model)
    return []


def check_payload(job_type: str, data: Any, field: str = "payload") -> None:
    """Raise `InvalidPayloadError` naming every problem of `data`, each at `field.<path>`."""
    problems = payload_problems(job_type, data)
    if problems:
        raise InvalidPayloadError([(path((field, *p.loc)), p.reason) for p in problems])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def problems_of(exc: ValidationError, model: type[Payload]) -> list[PayloadProblem]:
    """The problems pydantic found in a payload, located and worded for the caller."""
    return [_problem(error, model) for error in exc.errors(include_url=False)]


def _problem(error: Any, model: type[Payload]) -> PayloadProblem:
    # Tagged unions and model validators add their own names to the location; they mean nothing to the
    # caller. pydantic prefixes custom errors with "Value error, "; the reason reads better without it.
    loc = tuple(
        part for part in error.get("loc", ()) if not (isinstance(part, str) and part.startswith("function-"))
    )
    reason = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if reason != "Extra inputs are not permitted" or not loc:
        return PayloadProblem(loc, reason)
    # Unknown fields name the accepted one they probably meant (snake_case → camelCase, typos).
    key = str(loc[-1])
    names = [info.alias or name for name, info in model.model_fields.items()]
    meant = _camel(key) if _camel(key) in names else key
    hint = did_you_mean(meant, names, "; did you mean {!r}?") or f"; accepted: {', '.join(names)}"
    return PayloadProblem(loc, f"is not a field of this job type{hint}")
