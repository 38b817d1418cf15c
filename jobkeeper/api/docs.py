"""Swagger UI at `/docs`, its script, stylesheet and icon served by the API itself.

FastAPI's default page loads them from a CDN, so `/docs` would be blank without internet access. They come
from the `fastapi-offline` package (Swagger UI 5, which reads OpenAPI 3.1), mounted at `/docs/assets`;
the page names no other origin (Swagger UI's online validator is turned off too).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"


def _assets_dir() -> Path:
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve Swagger UI at `/docs` over `openapi_url` (create the app with `docs_url=None`)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=_assets_dir()), name="docs-assets")
    title = f"{app.title} - Swagger UI"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=None,  # bearer tokens only: no OAuth2 flow to come back from
            swagger_ui_parameters={"validatorUrl": None},  # else a badge fetched from validator.swagger.io
        )
