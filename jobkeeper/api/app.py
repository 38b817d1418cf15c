"""The FastAPI application of the API: `create_api(settings, database_url)`; jobkeeper.server adds the
dashboard to it and serves both.

`create_api` refuses to build an app without authentication configured (`ConfigError`), so no code path
serves requests with a default key. Request bodies are capped at `JOBKEEPER_API_MAX_BODY_BYTES` before any
parsing (413); every error leaves as `application/problem+json` (jobkeeper.api.problems).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobkeeper import __version__
from jobkeeper.api import (
    docs,
    problems,
    routes_alerts,
    routes_dead_letters,
    routes_health,
    routes_jobs,
    routes_limits,
    routes_metrics,
    routes_queues,
    routes_schedules,
)
from jobkeeper.api.auth import AuthConfig
from jobkeeper.api.cache import TtlCache
from jobkeeper.api.health import Readiness
from jobkeeper.api.methods import MethodsMiddleware
from jobkeeper.api.metrics import ApiMetrics, HttpMetricsMiddleware
from jobkeeper.api.ratelimit import RateLimiter
from jobkeeper.api.redirects import RelativeRedirectMiddleware
from jobkeeper.api.state import ApiState, Connections
from jobkeeper.api.tenancy import Tenancy
from jobkeeper.config import Settings
from jobkeeper.payloads import MODELS

DESCRIPTION = """\
A durable, multi-tenant job queue on PostgreSQL.

**Authentication**: `Authorization: Bearer <JWT>`. Tokens carry `sub`, `exp`, `aud`, `iss`, `tenant_id`
(UUID) and optionally `role` (`admin`: platform administrator; `venue_admin`: administers its own tenant;
anything else: a plain caller of its tenant). Other tenants' records answer 404.

**Errors** are `application/problem+json` with `errors[].field` and `errors[].reason`.

**Units**: `options.delay` is in milliseconds; durations elsewhere in seconds.
"""


class BodyLimitMiddleware:
    """Reads the request body up to `max_bytes` before the app sees it: larger bodies answer 413 whatever
    their Content-Length claims, and nothing downstream ever buffers more."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = problems.payload_too_large(f"the request body is larger than {self.max_bytes} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    await problems.Problem(400, "Content-Length is not a number").response()(
                        scope, receive, send
                    )
                    return
                if declared > self.max_bytes:
                    await too_large.response()(scope, receive, send)
                    return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:
                await too_large.response()(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def check_settings(settings: Settings) -> None:
    """Raise `ConfigError` unless the API can start with these settings (authentication, limits)."""
    AuthConfig.from_settings(settings)
    RateLimiter.check(settings)


def create_api(settings: Settings, database_url: str) -> FastAPI:
    """The API app on `database_url`, without the dashboard (jobkeeper.server adds it). Raises
    `ConfigError` when authentication is not configured."""
    auth = AuthConfig.from_settings(settings)
    metrics = ApiMetrics()
    limiter = RateLimiter(settings, metrics.rate_limited)
    connections = Connections(settings, database_url)
    tenancy = Tenancy(lambda: connections.pool, acquire_timeout=settings.api_acquire_timeout)
    state = ApiState(
        settings=settings,
        database_url=database_url,
        connections=connections,
        tenancy=tenancy,
        auth=auth,
        limiter=limiter,
        stats_cache=TtlCache("queue-stats", settings.api_stats_cache_ttl),
        metrics=metrics,
        readiness=Readiness(database_url, settings, tenancy),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await connections.open()
        try:
            yield
        finally:
            await connections.close()

    app = FastAPI(
        title="jobkeeper",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # jobkeeper.api.docs serves /docs from local assets
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.api = state
    app.state.auth = auth
    problems.install(app)
    docs.install(app, openapi_url="/openapi.json")
    for module in (
        routes_health,
        routes_jobs,
        routes_queues,
        routes_dead_letters,
        routes_schedules,
        routes_alerts,
        routes_limits,
        routes_metrics,
    ):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(MethodsMiddleware, api=app)  # 405 before the body is read
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.add_middleware(RelativeRedirectMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = problems.PROBLEM_SCHEMA
            for name, payload_schema in payload_schemas().items():
                if components.setdefault(name, payload_schema) != payload_schema:
                    raise RuntimeError(f"a payload schema and an API schema are both named {name!r}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def payload_schemas() -> dict[str, dict[str, Any]]:
    """`Payload_<Model>` of every built-in type, for `components.schemas`, with the models they nest
    (`PushSubscription`) hoisted beside them: a `$defs` left inside a component is not where its `$ref`
    (`#/components/schemas/…`) points, and the spec would not validate."""
    schemas: dict[str, dict[str, Any]] = {}
    for model in MODELS.values():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in schema.pop("$defs", {}).items():
            if schemas.setdefault(name, nested) != nested:
                raise RuntimeError(f"two payload models nest different schemas named {name!r}")
        schemas[f"Payload_{model.__name__}"] = schema
    return schemas
