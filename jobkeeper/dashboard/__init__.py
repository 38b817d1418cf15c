"""The dashboard at `/dashboard`: server-rendered pages over the API's auth and tenancy.

`install(app)` adds its routes and static files to the API app (jobkeeper.server.create_app), so the
dashboard runs wherever the API does (`jobkeeper api`, `jobkeeper up`). See docs/dashboard.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from jobkeeper.dashboard import (
    pages_auth,
    pages_dead_letters,
    pages_jobs,
    pages_operations,
    pages_outbox,
    pages_overview,
)
from jobkeeper.dashboard.web import PREFIX, STATIC_DIR

__all__ = ["install"]


def install(app: FastAPI) -> None:
    pages = (pages_auth, pages_overview, pages_jobs, pages_dead_letters, pages_operations, pages_outbox)
    for module in pages:
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
