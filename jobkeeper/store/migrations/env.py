"""Alembic environment: runs on the connection that `jobkeeper.store.migrate` hands it.

The version table lives inside the `jobkeeper` schema, which this file creates if needed (it is the one
object no revision owns, so that downgrading to base keeps Alembic's own bookkeeping).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

SCHEMA = "jobkeeper"


def run_migrations_online() -> None:
    connection: Connection = context.config.attributes["connection"]
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    context.configure(
        connection=connection,
        version_table_schema=SCHEMA,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
