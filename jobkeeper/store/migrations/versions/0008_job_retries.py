"""Add `jobs.retries`: each manual retry of a job, with how the run before it ended.

A retry resets a job's attempts, times and dead letter in place, so without this the job page could not
show the first run's end (dead-lettered or cancelled), when the retry happened, or number attempts across
runs. One small JSON entry per retry; adding a column with a constant default rewrites no rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from jobkeeper.store.migrations.sql import run

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE jobkeeper.jobs
    ADD COLUMN IF NOT EXISTS retries jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(retries) = 'array');
"""

DOWNGRADE = r"""
ALTER TABLE jobkeeper.jobs DROP COLUMN IF EXISTS retries;
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
