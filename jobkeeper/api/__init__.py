"""The HTTP API (FastAPI): `create_app(settings, database_url)` and `serve_api(settings, database_url)`."""

from jobkeeper.api.app import create_app, serve_api

__all__ = ["create_app", "serve_api"]
