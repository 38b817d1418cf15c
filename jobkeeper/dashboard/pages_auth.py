"""Sign in (a form that takes a JWT) and sign out."""

from __future__ import annotations

from fastapi import Request, Response

from jobkeeper.api import problems
from jobkeeper.api.auth import AuthConfig
from jobkeeper.dashboard import session
from jobkeeper.dashboard.web import (
    PREFIX,
    Signed,
    checked_form,
    page_router,
    read_form,
    redirect,
    render,
    url,
)

router = page_router()


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never another site (an open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return url("/")


def _form(request: Request, *, status_code: int = 200, error: str | None = None) -> Response:
    nonce = session.new_signin_nonce()
    response = render(
        request,
        "signin.html",
        {
            "nonce": nonce,
            "next": _safe_next(request.query_params.get("next")),
            "error": error or request.query_params.get("reason"),
        },
        status_code=status_code,
    )
    session.set_signin_nonce(response, request, nonce)
    return response


@router.get("/sign-in", name="dashboard_sign_in")
async def sign_in_form(request: Request) -> Response:
    return _form(request)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    if not session.signin_nonce_valid(request, form.get("nonce")):
        return _form(request, status_code=403, error="the sign-in form expired; please try again")
    token = (form.get("token") or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        return _form(request, status_code=400, error="paste a token to sign in")
    config: AuthConfig = request.app.state.auth
    try:
        config.verify(token)
    except problems.Problem as exc:
        return _form(request, status_code=401, error=exc.detail)
    response = redirect(_safe_next(form.get("next")))
    session.set_session(response, request, token)
    session.clear_signin_nonce(response, request)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, viewer: Signed) -> Response:
    await checked_form(request, viewer)
    response = redirect(url("/sign-in"), notice="signed out")
    session.clear_session(response, request)
    return response
