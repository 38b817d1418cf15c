"""Which methods a path allows: 405 with the right `Allow`, and literal segments before parameters.

Starlette tries routes in order and answers 405 with the methods of the *first* route whose path matched,
although FastAPI registers one route per method (`PUT /jobs` said `Allow: POST`, though GET exists too);
and a parameter matches a literal sibling (`GET /jobs/batch` reached `GET /jobs/{job_id}` and answered
422 on `path.job_id`). `MethodsMiddleware` decides both before routing, from every route of the app: a
path that is a route's literal path belongs to the literal routes only; a method none of the path's
routes has answers 405 naming all the methods they do have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Receive, Scope, Send

from jobkeeper.api import problems


@dataclass(slots=True)
class _Path:
    methods: set[str] = field(default_factory=set)
    route: Any = None
    """One of the path's routes: the route label of the 405 in the HTTP metrics."""


@dataclass(slots=True)
class RouteTable:
    literal: dict[str, _Path] = field(default_factory=dict)
    templated: dict[str, tuple[re.Pattern[str], _Path]] = field(default_factory=dict)

    @classmethod
    def of(cls, app: FastAPI) -> RouteTable:
        table = cls()
        for context in iter_route_contexts(app.routes):
            methods, template = context.methods, context.path_format
            regex = getattr(context, "path_regex", None)
            if not methods or template is None or regex is None:  # mounts (static files) route themselves
                continue
            if getattr(context, "param_convertors", None):
                _, path = table.templated.setdefault(template, (regex, _Path()))
            else:
                path = table.literal.setdefault(template, _Path())
            path.methods |= methods
            path.route = path.route or context
        return table

    def allowed(self, path: str) -> _Path | None:
        """The methods of `path`'s routes; None when no route has this path."""
        literal = self.literal.get(path)
        if literal is not None:
            return literal
        found: _Path | None = None
        for regex, templated in self.templated.values():
            if regex.match(path):
                found = found or _Path(route=templated.route)
                found.methods |= templated.methods
        return found


class MethodsMiddleware:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.table: RouteTable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.table is None:  # built at the first request: every route has been added by then
            self.table = RouteTable.of(self.api)
        route_path = str(scope["path"]).removeprefix(str(scope.get("root_path", "")))
        path = self.table.allowed(route_path)
        if path is None or scope["method"] in path.methods:
            await self.app(scope, receive, send)
            return
        scope["route"] = path.route
        allow = ", ".join(sorted(path.methods))
        problem = problems.Problem(
            405, f"{scope['method']} is not allowed here; allowed: {allow}", headers={"Allow": allow}
        )
        await problem.response()(scope, receive, send)
