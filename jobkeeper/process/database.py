"""Which database the service uses: `DATABASE_URL` when set, else the embedded server in the data dir."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jobkeeper.config import Settings
from jobkeeper.errors import ConfigError
from jobkeeper.process.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)

OWNER_FILE = "jobkeeper-up.pid"


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    embedded: EmbeddedPostgres | None
    """The embedded server, when one is used."""
    owned: bool
    """True when this process stops the embedded server on exit."""


@contextmanager
def open_database(settings: Settings, *, supervise: bool = False) -> Iterator[Database]:
    """Yield the database to use.

    With `supervise` (the `up` command) this process owns the embedded server: it refuses to run beside
    another live `up` on the same data dir, adopts a server orphaned by a killed one, and stops the server
    on exit. Otherwise (one-shot commands) a server that was already running is used and left running.
    """
    if settings.database_url is not None:
        yield Database(url=settings.database_url, embedded=None, owned=False)
        return
    server = EmbeddedPostgres(settings.data_dir)
    owner = server.data_dir / OWNER_FILE
    if supervise:
        _claim_ownership(owner)
        owned = True
    else:
        owned = not (server.pgdata / "postmaster.pid").exists()
    try:
        url = server.start()
        try:
            yield Database(url=url, embedded=server, owned=owned)
        finally:
            if owned:
                server.stop()
    finally:
        if supervise:
            owner.unlink(missing_ok=True)


def _claim_ownership(owner: Path) -> None:
    owner.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError, ValueError):
        pid = int(owner.read_text().strip())
        if pid != os.getpid() and _alive(pid):
            raise ConfigError(
                f"another `jobkeeper up` (pid {pid}) is running on JOBKEEPER_DATA_DIR={owner.parent}; "
                "stop it first or choose another data dir"
            )
        log.warning("adopting the embedded database left running by a stopped `jobkeeper up` (pid %s)", pid)
    owner.write_text(f"{os.getpid()}\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
