"""The service's HTTP server: the API with the dashboard mounted at `/dashboard`, served by uvicorn.

It sits above both: the dashboard builds on the API (its auth, tenancy and problems), so the API does not
import it; this module puts them together for `jobkeeper api` and `jobkeeper up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from jobkeeper.api.app import create_api
from jobkeeper.config import Settings
from jobkeeper.dashboard import install as install_dashboard

log = logging.getLogger(__name__)


def create_app(settings: Settings, database_url: str) -> FastAPI:
    """The app as served: the API on `database_url` and the dashboard. Raises `ConfigError` when
    authentication is not configured."""
    app = create_api(settings, database_url)
    install_dashboard(app)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `serve_api` decides when to stop, and a stop by signal is
    a normal exit (uvicorn would re-raise the signal at the end and kill the process that embeds it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(settings: Settings, database_url: str, *, stop: asyncio.Event | None = None) -> None:
    """Serve the API on JOBKEEPER_HOST:JOBKEEPER_PORT until `stop` is set or the task is cancelled.

    Without `stop`, SIGINT and SIGTERM stop it (a second SIGINT stops at once). In-flight requests finish
    before it returns; the pools are closed. Raises `ConfigError` before listening when authentication is
    not configured.
    """
    app = create_app(settings, database_url)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # X-Forwarded-Proto/-For are believed only from JOBKEEPER_TRUSTED_PROXIES (none by default): from
        # anyone else they would let a client claim https or another address.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        server_header=False,
        access_log=False,
        log_config=None,  # uvicorn's records go through jobkeeper.logs like every other record
        lifespan="on",
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()

        def _on_signal(sig: signal.Signals) -> None:
            if stop.is_set() and sig == signal.SIGINT:
                server.force_exit = True
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, _on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
                pass
    log.info("jobkeeper API on http://%s:%s (docs at /docs)", settings.host, settings.port)
    serving = asyncio.create_task(server.serve(), name="jobkeeper-api")
    stopped = asyncio.create_task(stop.wait(), name="jobkeeper-api-stop")
    try:
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopped.cancel()
        await asyncio.wait({serving})
        for sig in installed:
            loop.remove_signal_handler(sig)
    serving.result()
