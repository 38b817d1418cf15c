"""Rate limiters: a waits counter (jobs put back for want of a token or slot), and limiters of their own for
push notifications and analytics, so every built-in provider call goes through one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE jobkeeper.rate_limiters ADD COLUMN IF NOT EXISTS waits bigint NOT NULL DEFAULT 0;
DO $$
BEGIN
    ALTER TABLE jobkeeper.rate_limiters ADD CONSTRAINT rate_limiters_waits_check CHECK (waits >= 0);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

SET LOCAL ROLE jobkeeper_worker;
INSERT INTO jobkeeper.rate_limiters (name, rate_per_second, burst, max_concurrency, tokens)
VALUES ('webpush', 500, 100, 100, 100),
       ('analytics', 50, 20, 10, 20)
ON CONFLICT DO NOTHING;
UPDATE jobkeeper.job_types SET limiter = 'webpush' WHERE name = 'send-push' AND limiter IS NULL;
UPDATE jobkeeper.job_types SET limiter = 'analytics' WHERE name = 'analytics-track' AND limiter IS NULL;
RESET ROLE;
"""

DOWNGRADE = r"""
SET LOCAL ROLE jobkeeper_worker;
UPDATE jobkeeper.job_types SET limiter = NULL WHERE limiter IN ('webpush', 'analytics');
UPDATE jobkeeper.rate_limiters SET limiter_group = NULL WHERE limiter_group IN ('webpush', 'analytics');
DELETE FROM jobkeeper.rate_limiters WHERE name IN ('webpush', 'analytics');
RESET ROLE;
ALTER TABLE jobkeeper.rate_limiters DROP CONSTRAINT IF EXISTS rate_limiters_waits_check;
ALTER TABLE jobkeeper.rate_limiters DROP COLUMN IF EXISTS waits;
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
