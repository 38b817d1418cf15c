"""API: an index on when jobs finished, for the metrics computed at scrape time (and retention pruning).

The index is partial (finished rows only), so enqueue and claim never touch it; a job enters it once, when
it completes, fails or is cancelled.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE INDEX IF NOT EXISTS jobs_finished_idx
    ON jobkeeper.jobs (completed_at) WHERE completed_at IS NOT NULL;
"""

DOWNGRADE = r"""
DROP INDEX IF EXISTS jobkeeper.jobs_finished_idx;
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
