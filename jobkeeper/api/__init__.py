"""The HTTP API (FastAPI): `create_api(settings, database_url)`. The app as served, with the dashboard, is
`jobkeeper.server.create_app`; `jobkeeper.server.serve_api` serves it."""

from jobkeeper.api.app import create_api

__all__ = ["create_api"]
