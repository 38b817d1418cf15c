"""Errors as `application/problem+json` (RFC 9457), from this one module.

Routes raise `Problem` (or let a jobkeeper or validation error through: the store translates the
database's errors into jobkeeper's); `install` registers the handlers that turn each into a problem
document. Internals never reach the caller: unexpected errors are
logged with their traceback and answered with a generic 500 that names nothing inside.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobkeeper.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidJobError,
    InvalidValueError,
    JobkeeperError,
    PayloadTooLargeError,
    StatementTimeoutError,
    UnknownReferenceError,
    UnknownTenantError,
)

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_UNAVAILABLE = 5

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    """Where in the request: `body.data.amount`, `query.limit`, `path.job_id`."""
    reason: str


class Problem(Exception):
    """An answer other than success. `slug` becomes the problem type `urn:jobkeeper:problem:<slug>`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _TITLES.get(status, "error").lower().replace(" ", "-")
        self.title = title or _TITLES.get(status, "Error")
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "type": f"urn:jobkeeper:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        return JSONResponse(body, status_code=self.status, headers=self.headers, media_type=MEDIA_TYPE)


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, slug="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="jobkeeper"'})


def invalid_token(detail: str) -> Problem:
    return Problem(
        401,
        detail,
        slug="invalid-token",
        headers={"WWW-Authenticate": 'Bearer realm="jobkeeper", error="invalid_token"'},
    )


def forbidden(detail: str) -> Problem:
    return Problem(403, detail, slug="forbidden")


def not_found(what: str, ident: object) -> Problem:
    return Problem(404, f"no {what} {ident}", slug="not-found")


def conflict(detail: str) -> Problem:
    return Problem(409, detail, slug="conflict")


def invalid(errors: Iterable[FieldError], detail: str | None = None) -> Problem:
    found = list(errors)
    text = detail or "; ".join(f"{e.field}: {e.reason}" for e in found) or "the request is not valid"
    return Problem(422, text, slug="validation-error", errors=found)


def too_many_requests(retry_after: float, detail: str) -> Problem:
    return Problem(
        429,
        detail,
        slug="rate-limited",
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


def unavailable(detail: str, retry_after: int = RETRY_AFTER_UNAVAILABLE) -> Problem:
    return Problem(503, detail, slug="unavailable", headers={"Retry-After": str(retry_after)})


def payload_too_large(detail: str, field: str | None = None) -> Problem:
    errors = [FieldError(field, detail)] if field else []
    return Problem(413, detail, slug="payload-too-large", errors=errors)


# OpenAPI ---------------------------------------------------------------------------------------------------

_DESCRIPTIONS = {
    400: "Malformed JSON (the position is named)",
    401: "No bearer token, or an invalid one (see WWW-Authenticate)",
    403: "The token's role or tenant may not do this",
    404: "No such record for this caller (other tenants' ids answer 404 too)",
    409: "Conflicts with the record's current state",
    413: "Request body or job payload too large",
    422: "Invalid request: `errors[]` names each field and why",
    429: "Rate limit reached: retry after `Retry-After` seconds",
    503: "Database unavailable: retry after `Retry-After` seconds",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "urn:jobkeeper:problem:validation-error"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {
                    "field": {"type": "string", "example": "body.data.amount"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems a route can answer."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


# Request validation (FastAPI / pydantic) -----------------------------------------------------------------


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "jobs", 3, "data", "amount")` → `body.jobs[3].data.amount`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is not valid"))
    # pydantic prefixes custom errors with "Value error, "; the reason reads better without it.
    return message.removeprefix("Value error, ")


def validation_errors(errors: Sequence[Any], prefix: Sequence[int | str] = ()) -> list[FieldError]:
    found: list[FieldError] = []
    for error in errors:
        loc = [*prefix, *error.get("loc", ())]
        # Tagged unions and model validators add their own names to the location; they mean nothing to
        # the caller.
        loc = [part for part in loc if not (isinstance(part, str) and part.startswith("function-"))]
        found.append(FieldError(field_path(loc) or "body", _reason(error)))
    return found


def _malformed_json(errors: Sequence[Any]) -> Problem | None:
    for error in errors:
        if error.get("type") == "json_invalid":
            loc = error.get("loc", ())
            position = loc[1] if len(loc) > 1 else None
            cause = (error.get("ctx") or {}).get("error", "malformed JSON")
            where = f" at position {position}" if position is not None else ""
            detail = f"the request body is not valid JSON: {cause}{where}"
            return Problem(400, detail, slug="malformed-json", errors=[FieldError("body", f"{cause}{where}")])
    return None


# Handlers ------------------------------------------------------------------------------------------------


async def _problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response()


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = _malformed_json(errors)
    if malformed is not None:
        return malformed.response()
    return invalid(validation_errors(errors)).response()


async def _invalid_job(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidJobError)
    if isinstance(exc, PayloadTooLargeError):
        return payload_too_large(exc.reason, f"body.{exc.field}").response()
    return invalid([FieldError(f"body.{exc.field}", exc.reason)]).response()


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such endpoint; the API is described at /docs"
    return Problem(exc.status_code, detail, headers=exc.headers).response()


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return unavailable("the database is unavailable; try again shortly").response()


async def _statement_timeout(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("statement cancelled: %s", exc)
    return unavailable("the request took too long and was cancelled; try again shortly").response()


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConflictError)
    if exc.field is None:
        return conflict("this conflicts with an existing record").response()
    return conflict(f"a record with this {exc.field} already exists").response()


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    # The store's translation of a refused value or reference: its reason quotes the server's message,
    # which names tables and constraints, so only the field goes out.
    if isinstance(exc, UnknownTenantError):  # raised by the client, with a reason of its own
        return await _invalid_job(request, exc)
    if isinstance(exc, UnknownReferenceError):
        reason = "refers to something that does not exist"
        return invalid([FieldError(f"body.{exc.field}", reason)]).response()
    assert isinstance(exc, InvalidValueError)
    log.info("value rejected by the database: %s", exc)
    detail = "a value is outside what the database accepts"
    if exc.column is None:
        return invalid([], detail).response()
    return invalid(
        [FieldError(f"body.{exc.column}", "is outside what the database accepts")], detail
    ).response()


async def _jobkeeper(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected jobkeeper error", exc_info=exc)
    return Problem(500, "an internal error occurred", slug="internal-error").response()


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return Problem(500, "an internal error occurred", slug="internal-error").response()


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(InvalidJobError, _invalid_job)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(UnknownReferenceError, _refused)
    app.add_exception_handler(InvalidValueError, _refused)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(StatementTimeoutError, _statement_timeout)
    app.add_exception_handler(DatabaseUnavailableError, _unavailable)
    app.add_exception_handler(JobkeeperError, _jobkeeper)
    app.add_exception_handler(Exception, _unexpected)
