"""Apply, revert and inspect schema migrations (Alembic, revisions written as SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from jobkeeper.errors import DatabaseUnavailableError, MigrationError
from jobkeeper.store.errors import first_line

SCHEMA = "jobkeeper"
_SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


@contextmanager
def _connection(database_url: str) -> Iterator[sqlalchemy.Connection]:
    # SQLAlchemy only carries Alembic's bookkeeping; the connection itself is psycopg's, made from the
    # same URL (and TLS keywords) as every other connection of the service.
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(database_url),
        poolclass=sqlalchemy.NullPool,
    )
    try:
        with engine.begin() as connection:
            yield connection
    except sqlalchemy.exc.DBAPIError as exc:  # psycopg's error, as SQLAlchemy wraps it
        if isinstance(exc.orig, psycopg.OperationalError):
            raise DatabaseUnavailableError(f"database unreachable: {first_line(exc.orig)}") from exc
        raise MigrationError(f"database error: {first_line(exc.orig or exc)}") from exc
    except psycopg.Error as exc:
        raise MigrationError(f"migration failed: {exc}") from exc
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision this version of jobkeeper knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def upgrade(database_url: str, revision: str = "head") -> None:
    config = _config()
    with _connection(database_url) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(database_url: str, revision: str = "-1") -> None:
    config = _config()
    with _connection(database_url) as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current(database_url: str) -> str | None:
    """The revision the database is at, or None when jobkeeper was never installed there."""
    with _connection(database_url) as connection:
        context = MigrationContext.configure(connection, opts={"version_table_schema": SCHEMA})
        return context.get_current_revision()


def upgrade_sql(revision: str = "head") -> str:
    """The SQL an upgrade from nothing to `revision` runs, for review by a DBA."""
    return "\n".join(_revision_sql(revision, "UPGRADE"))


def _revision_sql(revision: str, attribute: str) -> list[str]:
    scripts = ScriptDirectory.from_config(_config())
    chain = list(scripts.iterate_revisions(revision, "base"))
    chain.reverse()
    sections = []
    for rev in chain:
        title = f"revision {rev.revision}: {rev.doc}"
        header = "\n".join(f"-- {line}".rstrip() for line in title.splitlines())
        sections.append(f"{header}\n{getattr(rev.module, attribute)}")
    return sections
