"""Job lists at a million rows: an index on (created_at, id) for the platform admin's newest-first list.

A tenant's list reads `jobs_tenant_created_idx`; a platform admin's (no tenant filter) had no index in its
order and sorted the whole table for each page. With this one, the first page, a deep keyset page, a time
range and the common status/queue filters read a few index pages. It costs one more index entry per row
version written (enqueue, claim, completion); figures in docs/dashboard.md#at-a-million-rows.

On a large existing table, `CREATE INDEX` blocks writes to `jobs` while it builds (seconds per million
rows). To avoid that, build it beforehand without blocking; this revision's `IF NOT EXISTS` then finds it:

    CREATE INDEX jobs_created_idx ON ONLY jobkeeper.jobs (created_at, id);
    CREATE INDEX CONCURRENTLY jobs_logged_created_idx ON jobkeeper.jobs_logged (created_at, id);
    CREATE INDEX CONCURRENTLY jobs_ephemeral_created_idx ON jobkeeper.jobs_ephemeral (created_at, id);
    ALTER INDEX jobkeeper.jobs_created_idx ATTACH PARTITION jobkeeper.jobs_logged_created_idx;
    ALTER INDEX jobkeeper.jobs_created_idx ATTACH PARTITION jobkeeper.jobs_ephemeral_created_idx;

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE INDEX IF NOT EXISTS jobs_created_idx ON jobkeeper.jobs (created_at, id);
"""

DOWNGRADE = r"""
DROP INDEX IF EXISTS jobkeeper.jobs_created_idx;
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
