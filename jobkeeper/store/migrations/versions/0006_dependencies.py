"""Job dependencies: a job may wait for other jobs of its tenant to complete (docs/concepts.md, "Dependencies").

- Status `waiting`: the job has parents that have not completed yet. It is in none of the pending partial
  indexes, so the claim never reads it; it becomes `pending` when its last parent completes, or
  `cancelled` when a parent fails or is cancelled.
- `jobs.has_dependents`: set on a parent when a child naming it is enqueued (that update is also the
  row lock that orders the enqueue against the parent's completion). Completion looks for dependents only
  where it is set, so jobs without dependents pay nothing.
- `job_dependencies (depends_on, job_id)`: one row per edge, tenant-owned and under row-level security like
  every tenant table. There is no foreign key to `jobs` (its primary key is (id, tier)); retention deletes
  a job's edges with it.

Widening the status CHECK re-reads `jobs` once to validate it (seconds per million rows, under an
ACCESS EXCLUSIVE lock); the new column has a constant default, so adding it rewrites nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE jobkeeper.jobs DROP CONSTRAINT IF EXISTS jobs_status_check;
ALTER TABLE jobkeeper.jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'waiting'));

ALTER TABLE jobkeeper.jobs ADD COLUMN IF NOT EXISTS has_dependents boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS jobkeeper.job_dependencies (
    depends_on  uuid NOT NULL,
    job_id      uuid NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (depends_on, job_id),
    CHECK (depends_on <> job_id)
);
-- A job's parents (release checks, the dashboard's "Depends on"); the primary key serves its dependents.
CREATE INDEX IF NOT EXISTS job_dependencies_job_idx ON jobkeeper.job_dependencies (job_id);
CREATE INDEX IF NOT EXISTS job_dependencies_tenant_idx ON jobkeeper.job_dependencies (tenant_id);

CREATE OR REPLACE TRIGGER touch_updated_at BEFORE UPDATE ON jobkeeper.job_dependencies
    FOR EACH ROW EXECUTE FUNCTION jobkeeper.touch_updated_at();

GRANT SELECT, INSERT, UPDATE, DELETE ON jobkeeper.job_dependencies TO jobkeeper_api, jobkeeper_worker;

ALTER TABLE jobkeeper.job_dependencies ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobkeeper.job_dependencies FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON jobkeeper.job_dependencies;
CREATE POLICY tenant_isolation ON jobkeeper.job_dependencies TO jobkeeper_api
    USING (tenant_id = NULLIF(current_setting('jobkeeper.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('jobkeeper.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS worker_all_tenants ON jobkeeper.job_dependencies;
CREATE POLICY worker_all_tenants ON jobkeeper.job_dependencies TO jobkeeper_worker
    USING (true) WITH CHECK (true);
"""

DOWNGRADE = r"""
-- Waiting jobs lose their dependencies: they become pending (the older schema has no `waiting`).
SET LOCAL ROLE jobkeeper_worker;
UPDATE jobkeeper.jobs SET status = 'pending' WHERE status = 'waiting';
RESET ROLE;
DROP TABLE IF EXISTS jobkeeper.job_dependencies;
ALTER TABLE jobkeeper.jobs DROP COLUMN IF EXISTS has_dependents;
ALTER TABLE jobkeeper.jobs DROP CONSTRAINT IF EXISTS jobs_status_check;
ALTER TABLE jobkeeper.jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled'));
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
