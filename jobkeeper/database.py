"""Which database the service uses: `DATABASE_URL` when set, else the embedded server in the data dir."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from jobkeeper.config import Settings
from jobkeeper.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    embedded: EmbeddedPostgres | None
    """The embedded server, when this process started or adopted one."""
    owned: bool
    """True when this process started the server and must stop it."""


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    """Yield the database to use; an embedded server started here is stopped on exit.

    An embedded server that was already running (another `jobkeeper` process owns it) is used and left
    running.
    """
    if settings.database_url is not None:
        yield Database(url=settings.database_url, embedded=None, owned=False)
        return
    server = EmbeddedPostgres(settings.data_dir)
    already_running = (server.pgdata / "postmaster.pid").exists()
    url = server.start()
    try:
        yield Database(url=url, embedded=server, owned=not already_running)
    finally:
        if not already_running:
            server.stop()
