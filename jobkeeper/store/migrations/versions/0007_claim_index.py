"""Drop `jobs_claim_idx` (queue, priority DESC, scheduled_at) WHERE pending: the fair claim's index serves it.

Every reader of pending jobs by queue (the claim, the alert checks' depth and oldest age, the dashboard's
diagnosis) is served as well by `jobs_fair_claim_idx` (queue, tenant_id, priority DESC, scheduled_at), which
the claim needs anyway. Kept, it cost an index entry per enqueued job and gave the claim's generic plan a
wrong way in: a queue-wide walk filtered by tenant, chosen for the partition whose statistics said it was
empty. Dropping an index takes a brief exclusive lock on `jobs`, no rebuild.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = r"""
DROP INDEX IF EXISTS jobkeeper.jobs_claim_idx;
"""

DOWNGRADE = r"""
CREATE INDEX IF NOT EXISTS jobs_claim_idx
    ON jobkeeper.jobs (queue, priority DESC, scheduled_at) WHERE status = 'pending';
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
