"""What every dashboard page shares: templates, the signed-in principal, CSRF-checked forms, errors as HTML.

Pages read and write through `ApiState.tenancy.transaction(principal)`, the same row-level-security
transaction as the API, and check roles with the same `Principal` properties, so the dashboard can show or
do nothing the API would refuse.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from jobkeeper.api import problems
from jobkeeper.api.auth import AuthConfig, Principal
from jobkeeper.api.problems import FieldError
from jobkeeper.api.state import ApiState, get_state
from jobkeeper.dashboard import session

PREFIX = "/dashboard"
STATIC_DIR = Path(__file__).parent / "static"
MAX_FORM_FIELDS = 1000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


# Templates -----------------------------------------------------------------------------------------------


def _age(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "\N{EN DASH}"
    value = max(0.0, float(seconds))
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.0f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _when(value: datetime | None) -> str:
    if value is None:
        return "\N{EN DASH}"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jobkeeper.dashboard", "templates"),
        autoescape=True,  # every template, whatever its name: all output is HTML-escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = _age
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    return env


templates = _environment()


# The signed-in principal ---------------------------------------------------------------------------------


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, fragments and actions answer 401/403."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in principal of a page, with its session token (for CSRF tokens)."""

    principal: Principal
    token: str
    state: ApiState

    @property
    def csrf(self) -> str:
        return session.csrf_token(self.token)

    @property
    def scope(self) -> uuid.UUID | None:
        """The tenant every read is limited to (None: a platform admin sees every tenant)."""
        return None if self.principal.is_platform_admin else self.principal.tenant_id

    def tenant_filter(self, raw: str | None, errors: list[FieldError]) -> uuid.UUID | None:
        """The tenant a list filter asks for (`raw`, empty: none), checked against this viewer; a bad id
        is added to `errors`, another tenant's for a tenant user is refused. None: `scope` applies."""
        if not raw:
            return self.scope
        try:
            requested = uuid.UUID(raw)
        except ValueError:
            errors.append(FieldError("tenant", "is not a tenant id (UUID)"))
            return self.scope
        if self.principal.is_platform_admin:
            return requested
        if requested != self.principal.tenant_id:
            raise problems.forbidden("only platform admins may read another tenant's records")
        return self.scope

    def require_tenant_admin(self) -> None:
        if not self.principal.is_tenant_admin:
            raise problems.forbidden("this needs the admin or venue_admin role")

    def require_platform_admin(self) -> None:
        if not self.principal.is_platform_admin:
            raise problems.forbidden("this needs the admin role (platform administrator)")


async def current_viewer(request: Request) -> Viewer:
    token = request.cookies.get(session.COOKIE)
    if not token:
        raise SignInRequired()
    config: AuthConfig = request.app.state.auth
    try:
        principal = config.verify(token)
    except problems.Problem as exc:
        raise SignInRequired(exc.detail) from None
    request.state.principal = principal
    return Viewer(principal=principal, token=token, state=get_state(request))


Signed = Annotated[Viewer, Depends(current_viewer)]


# Forms -------------------------------------------------------------------------------------------------


class Form:
    """An urlencoded form body (no multipart: the dashboard's forms have no files)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def get(self, name: str) -> str | None:
        for key, value in self.pairs:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def without(self, *names: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.pairs if k not in names]


async def read_form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise problems.Problem(415, "dashboard forms are sent as application/x-www-form-urlencoded")
    body = await request.body()
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise problems.Problem(400, "the form is not valid") from None
    return Form(pairs)


async def checked_form(request: Request, viewer: Viewer) -> Form:
    """The form of a POST action, after its CSRF token is checked (403 when missing or wrong)."""
    try:
        form = await read_form(request)
    except problems.Problem:  # not a form at all (another content type): no token either
        form = Form([])
    if not session.csrf_valid(viewer.token, form.get(session.CSRF_FIELD)):
        raise problems.Problem(
            403,
            "the form's CSRF token is missing or wrong: reload the page and try again",
            slug="csrf",
            title="Forbidden (CSRF)",
        )
    return form


# Responses -----------------------------------------------------------------------------------------------


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    viewer: Viewer | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    values = {
        "request": request,
        "viewer": viewer,
        "path": request.url.path,
        "notice": request.query_params.get("notice"),
        "url": url,
        "csrf_field": session.CSRF_FIELD,
    } | dict(context or {})
    html = templates.get_template(template).render(values)
    return secure(HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def url(path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None, **extra: Any) -> str:
    """`PREFIX + path` with a query string of the non-empty params."""
    items: list[tuple[str, Any]] = list(params.items() if isinstance(params, Mapping) else (params or []))
    items += list(extra.items())
    query = urlencode(
        [(k, v) for k, v in items if v is not None and v != ""],
        doseq=False,
    )
    return f"{PREFIX}{path}" + (f"?{query}" if query else "")


def redirect(target: str, notice: str | None = None) -> Response:
    if notice:
        target += ("&" if "?" in target else "?") + urlencode({"notice": notice})
    return secure(RedirectResponse(target, status_code=303))


def _sign_in_redirect(request: Request, reason: str | None) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = redirect(url("/sign-in", next=here, reason=reason))
    if reason:
        session.clear_session(response, request)
    return response


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


class DashboardRoute(APIRoute):
    """Dashboard routes answer HTML: a missing session redirects to sign-in (401 for fragments and POSTs),
    and the API's problems (403, 404, 409, 422 …) become an error page with the same status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                if request.method == "POST":
                    return _error(request, 403, "Forbidden", "sign in first: this action needs a session")
                if _wants_fragment(request):
                    return secure(Response(status_code=401))
                return _sign_in_redirect(request, exc.reason)
            except problems.Problem as exc:
                return _error(request, exc.status, exc.title, exc.detail, exc.headers)
            except RequestValidationError as exc:
                found = problems.validation_errors(exc.errors())
                detail = "; ".join(f"{e.field}: {e.reason}" for e in found) or "the request is not valid"
                return _error(request, 422, "Invalid request", detail)

        return handle


def _error(
    request: Request, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    viewer = None
    principal = getattr(request.state, "principal", None)
    token = request.cookies.get(session.COOKIE)
    if isinstance(principal, Principal) and token:
        viewer = Viewer(principal=principal, token=token, state=get_state(request))
    response = render(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail},
        viewer=viewer,
        status_code=status,
    )
    for name, value in (headers or {}).items():
        if name.lower() != "www-authenticate":
            response.headers[name] = value
    return response


def page_router() -> APIRouter:
    """A dashboard module's router: under PREFIX, errors rendered as pages, not in the OpenAPI schema."""
    return APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)
