"""Worker indexes: the fair claim (per queue and tenant) and the running jobs of a tenant (concurrency caps).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- The claim reads, for each tenant with ready jobs in a queue, its best jobs in priority order
-- (queue, tenant_id, priority DESC, scheduled_at); the loose index scan that finds those tenants walks the
-- same index. Only pending rows are in it, so finished history never slows the claim.
CREATE INDEX IF NOT EXISTS jobs_fair_claim_idx
    ON jobkeeper.jobs (queue, tenant_id, priority DESC, scheduled_at) WHERE status = 'pending';

-- A tenant's running jobs, counted by the claim when the tenant has a concurrency cap.
CREATE INDEX IF NOT EXISTS jobs_tenant_running_idx
    ON jobkeeper.jobs (tenant_id) WHERE status = 'processing';
"""

DOWNGRADE = r"""
DROP INDEX IF EXISTS jobkeeper.jobs_tenant_running_idx;
DROP INDEX IF EXISTS jobkeeper.jobs_fair_claim_idx;
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
