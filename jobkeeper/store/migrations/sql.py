"""Run a revision's SQL text verbatim on the migration's own connection and transaction."""

from __future__ import annotations

from typing import LiteralString

from alembic import op


def run(sql: LiteralString) -> None:
    # The raw psycopg connection takes several statements at once when no parameters are given, and
    # SQLAlchemy never gets to reinterpret colons or percent signs in the SQL.
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    raw.execute(sql)
