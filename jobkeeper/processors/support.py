"""What the communication and background processors share: where their settings come from, the failure
of a job whose provider is not configured, payload checks, and one translation of provider errors into
job outcomes.

Outcomes of an outbound call (docs/processors.md#errors-and-retries):
- network errors, timeouts, 408/409/425/429 and 5xx: the `ProviderError` is raised as it is, so the job is
  retried with its queue's backoff; a 429 or 503 with `Retry-After` becomes `Retry(after=…)` instead;
- any other refusal: `ProviderRejectedError`, a `PermanentError` keeping the provider's own code.
"""

from __future__ import annotations

import email.utils
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache, wraps
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import httpx
from pydantic import ValidationError

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError, PermanentError, Retry
from jobkeeper.payloads import path, problems_of
from jobkeeper.processors.fields import Payload
from jobkeeper.providers.errors import ProviderError, check_response, transport_error

if TYPE_CHECKING:
    from pathlib import Path

    import jinja2

    from jobkeeper.worker.context import JobContext
    from jobkeeper.worker.registry import Registry

MAX_RETRY_AFTER = 3600.0
"""A provider asking for a longer pause still gets retried after an hour."""
P = TypeVar("P", bound=Payload)


class NotConfiguredError(PermanentError):
    """The job's provider has no (or an invalid) configuration. The message names every setting to fix."""

    def __init__(self, job_type: str, problems: list[str]) -> None:
        super().__init__(f"{job_type} is not configured: {'; '.join(problems)}")
        self.job_type = job_type
        self.problems = problems


class InvalidPayloadError(PermanentError):
    """The payload can never be processed as it is (a missing field, a malformed address)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"payload.{field}: {message}")
        self.field = field


class ProviderRejectedError(PermanentError):
    """The provider refused the request in a way a retry cannot change (HTTP 4xx, SMTP 5xx)."""

    def __init__(self, provider: str, code: str | None, message: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code


class SettingsSource:
    """The settings a processor runs with: the ones given at registration, else read from the environment
    once, at the first job (so that importing and registering never needs the environment)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    def get(self, job_type: str) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except ConfigError as exc:
                raise NotConfiguredError(job_type, [str(exc)]) from exc
        return self._settings


Handle = Callable[[Any, "JobContext", Settings], Awaitable[dict[str, Any]]]


def processor(
    registry: Registry, job_type: str, queue: str, settings: Settings | None
) -> Callable[[Handle], None]:
    """Register the decorated `handle(payload, ctx, settings)` for `job_type` in `registry`, unless the type
    has a handler already (yours wins). The settings are `settings`, else the environment's, read once at
    the first job (`SettingsSource`)."""

    def register(handle: Handle) -> None:
        if job_type in registry:
            return
        source = SettingsSource(settings)

        @wraps(handle)  # the handler keeps the processor's name (logs, `TaskSpec.import_path`)
        async def handler(payload: Any, ctx: JobContext) -> dict[str, Any]:
            return await handle(payload, ctx, source.get(job_type))

        registry.task(job_type, queue=queue)(handler)

    return register


Checker = Callable[[Settings], dict[str, list[str]]]


def require_configured(job_type: str, settings: Settings, problems: Checker) -> None:
    """Fail the job permanently when its processor's configuration has problems (never a fake success)."""
    found = problems(settings).get(job_type) or []
    if found:
        raise NotConfiguredError(job_type, found)


def require_database(job_type: str, settings: Settings, problems: Checker) -> str:
    """`require_configured` for a processor that reads the database: its URL."""
    require_configured(job_type, settings, problems)
    if settings.database_url is None:
        raise NotConfiguredError(job_type, [])
    return settings.database_url


# -- payloads ---------------------------------------------------------------------------------------------


def parse(model: type[P], payload: Any) -> P:
    """The job's payload read as its type's model (`jobkeeper.payloads`), once per job. Every way in has
    validated it already; one that still breaks the model (enqueued before these rules, or by a path that
    skips them) fails the job permanently, naming each problem."""
    if not isinstance(payload, Mapping):
        raise InvalidPayloadError("", f"must be a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload, strict=True)
    except ValidationError as exc:
        problems = problems_of(exc, model)
    first, rest = problems[0], problems[1:]
    others = "".join(f"; payload.{path(p.loc)}: {p.reason}" for p in rest)
    raise InvalidPayloadError(path(first.loc), first.reason + others)


# -- outbound calls ---------------------------------------------------------------------------------------


def reraise(exc: ProviderError) -> NoReturn:
    """Raise the job outcome of a provider error: the error itself when a retry may succeed, else
    `ProviderRejectedError` with the provider's code."""
    if exc.retryable:
        raise exc
    raise ProviderRejectedError(exc.provider, exc.code, str(exc)) from exc


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (a number of seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def check(provider: str, response: httpx.Response, *, code: str | None = None) -> None:
    """Raise the outcome of a non-2xx answer (see the module's docstring)."""
    if response.is_success:
        return
    if response.status_code in (429, 503):
        after = retry_after(response)
        if after is not None:
            raise Retry(
                after,
                f"{provider}: HTTP {response.status_code} ({code or 'busy'}), retry after {after:g} s",
            )
    try:
        check_response(provider, response, code=code)
    except ProviderError as exc:
        reraise(exc)


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The CA bundle is loaded once per process, not once per request (it takes ~50 ms)."""
    return httpx.create_ssl_context()


async def post(
    provider: str,
    url: str,
    *,
    timeout: float,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    """One POST with a timeout; network failures and timeouts raise a retryable `ProviderError`."""
    try:
        async with httpx.AsyncClient(timeout=timeout, auth=auth, verify=tls_context()) as http:
            return await http.post(url, json=json, data=data, content=content, headers=headers)
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc) from exc


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@lru_cache(maxsize=16)
def template_environment(user_dir: Path | None, builtin_dir: Path, *, html: bool) -> jinja2.Environment:
    """Templates of `user_dir` first, then `builtin_dir`; undefined variables raise instead of rendering
    as empty text. `html` (email): `.html` files are autoescaped and a trailing newline is kept; text
    (SMS, email text parts) is never escaped, not being HTML."""
    import jinja2  # only the processors that render templates pay for it

    loaders: list[jinja2.BaseLoader] = []
    if user_dir is not None:
        loaders.append(jinja2.FileSystemLoader(user_dir))
    loaders.append(jinja2.FileSystemLoader(builtin_dir))
    escape = jinja2.select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False)
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=escape if html else False,  # noqa: S701 - SMS and text parts are not HTML
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=html,
        auto_reload=False,
    )
