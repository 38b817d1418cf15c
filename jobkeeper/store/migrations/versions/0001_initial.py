"""Initial schema: tenants, queues, job types, jobs (by tier), dead letters, schedules, idempotency keys,
rate limiters and limits, queue metrics, alerts, workers, leases; roles, grants and row-level security.

Every statement is idempotent (IF NOT EXISTS, OR REPLACE, ON CONFLICT DO NOTHING, policies dropped before
they are created), so an upgrade over objects created by hand or by an interrupted run does not fail.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from jobkeeper.store.migrations.sql import run

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
-- Roles are cluster-wide: create them only when missing (another database of the cluster may own them).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jobkeeper_api') THEN
        CREATE ROLE jobkeeper_api NOLOGIN NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jobkeeper_worker') THEN
        CREATE ROLE jobkeeper_worker NOLOGIN NOBYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database
END $$;

-- The migrating (owning) user may act as either role; being a member of jobkeeper_worker is also what
-- lets the owner's own connections see every tenant's rows under FORCE ROW LEVEL SECURITY.
GRANT jobkeeper_api, jobkeeper_worker TO CURRENT_USER;

CREATE OR REPLACE FUNCTION jobkeeper.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS jobkeeper.tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    active      boolean NOT NULL DEFAULT true,
    max_concurrency integer CHECK (max_concurrency >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS jobkeeper.queues (
    name                 text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    tenant_id            uuid REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    tier                 text NOT NULL CHECK (tier IN ('durable', 'fast', 'ephemeral')),
    max_attempts         integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    backoff              text NOT NULL CHECK (backoff IN ('exponential', 'fixed')),
    backoff_base_seconds double precision NOT NULL CHECK (backoff_base_seconds > 0),
    backoff_max_seconds  double precision NOT NULL CHECK (backoff_max_seconds >= backoff_base_seconds),
    backoff_jitter       boolean NOT NULL DEFAULT true,
    timeout_seconds      double precision NOT NULL CHECK (timeout_seconds > 0),
    default_priority     smallint NOT NULL CHECK (default_priority BETWEEN 1 AND 10),
    paused               boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS queues_tenant_idx ON jobkeeper.queues (tenant_id);

CREATE TABLE IF NOT EXISTS jobkeeper.rate_limiters (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    tenant_id        uuid REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    rate_per_second  double precision NOT NULL CHECK (rate_per_second > 0),
    burst            integer NOT NULL CHECK (burst >= 1),
    max_concurrency  integer CHECK (max_concurrency >= 1),
    limiter_group    text REFERENCES jobkeeper.rate_limiters (name) ON DELETE RESTRICT,
    tokens           double precision NOT NULL CHECK (tokens >= 0),
    refilled_at      timestamptz NOT NULL DEFAULT now(),
    in_flight        integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (limiter_group IS DISTINCT FROM name)
);
CREATE INDEX IF NOT EXISTS rate_limiters_tenant_idx ON jobkeeper.rate_limiters (tenant_id);
CREATE INDEX IF NOT EXISTS rate_limiters_group_idx ON jobkeeper.rate_limiters (limiter_group);

CREATE TABLE IF NOT EXISTS jobkeeper.job_types (
    name                    text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    queue                   text NOT NULL REFERENCES jobkeeper.queues (name) ON DELETE RESTRICT ON UPDATE CASCADE,
    max_attempts            integer CHECK (max_attempts BETWEEN 1 AND 1000),
    timeout_seconds         double precision CHECK (timeout_seconds > 0),
    priority                smallint CHECK (priority BETWEEN 1 AND 10),
    limiter                 text REFERENCES jobkeeper.rate_limiters (name) ON DELETE RESTRICT,
    idempotency_ttl_seconds double precision CHECK (idempotency_ttl_seconds > 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS job_types_queue_idx ON jobkeeper.job_types (queue);
CREATE INDEX IF NOT EXISTS job_types_limiter_idx ON jobkeeper.job_types (limiter);

-- One relation for every tier; the ephemeral partition is UNLOGGED (DESIGN §2). The primary key must
-- contain the partition key; ids are random UUIDs, so (id, tier) is as unique as id.
CREATE TABLE IF NOT EXISTS jobkeeper.jobs (
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    queue            text NOT NULL REFERENCES jobkeeper.queues (name) ON DELETE RESTRICT ON UPDATE CASCADE,
    type             text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    tier             text NOT NULL CHECK (tier IN ('durable', 'fast', 'ephemeral')),
    priority         smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    timeout_seconds  double precision CHECK (timeout_seconds > 0),
    last_error       text,
    errors           jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(errors) = 'array'),
    result           jsonb,
    progress         jsonb,
    idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    worker_id        uuid,
    heartbeat_at     timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    scheduled_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, tier)
) PARTITION BY LIST (tier);
CREATE TABLE IF NOT EXISTS jobkeeper.jobs_logged
    PARTITION OF jobkeeper.jobs FOR VALUES IN ('durable', 'fast');
CREATE UNLOGGED TABLE IF NOT EXISTS jobkeeper.jobs_ephemeral
    PARTITION OF jobkeeper.jobs FOR VALUES IN ('ephemeral');

-- Claiming reads jobs_fair_claim_idx (revision 0002). This revision's first claim index,
-- jobs (queue, priority DESC, scheduled_at) WHERE status = 'pending', is dropped by revision 0007 and no
-- longer created here, so that running this SQL again over a current schema does not bring it back.
CREATE INDEX IF NOT EXISTS jobs_status_scheduled_idx ON jobkeeper.jobs (status, scheduled_at);
CREATE INDEX IF NOT EXISTS jobs_tenant_created_idx ON jobkeeper.jobs (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_queue_status_idx ON jobkeeper.jobs (queue, status);
CREATE INDEX IF NOT EXISTS jobs_type_created_idx ON jobkeeper.jobs (type, created_at);
CREATE INDEX IF NOT EXISTS jobs_idempotency_idx
    ON jobkeeper.jobs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_heartbeat_idx ON jobkeeper.jobs (heartbeat_at) WHERE status = 'processing';

CREATE TABLE IF NOT EXISTS jobkeeper.dead_letter_jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    job_id          uuid NOT NULL,
    queue           text NOT NULL REFERENCES jobkeeper.queues (name) ON DELETE RESTRICT ON UPDATE CASCADE,
    type            text NOT NULL,
    payload         jsonb NOT NULL,
    priority        smallint NOT NULL CHECK (priority BETWEEN 1 AND 10),
    attempts        integer NOT NULL CHECK (attempts >= 0),
    max_attempts    integer NOT NULL CHECK (max_attempts >= 1),
    last_error      text,
    errors          jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(errors) = 'array'),
    idempotency_key text,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    replayed_job_id uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, job_id)
);
CREATE INDEX IF NOT EXISTS dead_letter_jobs_queue_failed_idx ON jobkeeper.dead_letter_jobs (queue, failed_at);
CREATE INDEX IF NOT EXISTS dead_letter_jobs_type_failed_idx ON jobkeeper.dead_letter_jobs (type, failed_at);
CREATE INDEX IF NOT EXISTS dead_letter_jobs_tenant_failed_idx
    ON jobkeeper.dead_letter_jobs (tenant_id, failed_at);

CREATE TABLE IF NOT EXISTS jobkeeper.schedules (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id               uuid NOT NULL REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    cron                    text NOT NULL CHECK (length(cron) BETWEEN 9 AND 200),
    timezone                text NOT NULL DEFAULT 'UTC',
    queue                   text NOT NULL REFERENCES jobkeeper.queues (name) ON DELETE RESTRICT ON UPDATE CASCADE,
    job_type                text NOT NULL CHECK (length(job_type) BETWEEN 1 AND 200),
    payload                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority                smallint CHECK (priority BETWEEN 1 AND 10),
    active                  boolean NOT NULL DEFAULT true,
    missed_policy           text NOT NULL DEFAULT 'skip' CHECK (missed_policy IN ('skip', 'run_once', 'catch_up')),
    catch_up_window_seconds double precision NOT NULL DEFAULT 3600 CHECK (catch_up_window_seconds > 0),
    overlap_policy          text NOT NULL DEFAULT 'allow' CHECK (overlap_policy IN ('allow', 'skip')),
    last_run_at             timestamptz,
    next_run_at             timestamptz,
    last_job_id             uuid,
    missed_runs             integer NOT NULL DEFAULT 0 CHECK (missed_runs >= 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX IF NOT EXISTS schedules_due_idx ON jobkeeper.schedules (next_run_at) WHERE active;
CREATE INDEX IF NOT EXISTS schedules_queue_idx ON jobkeeper.schedules (queue);

CREATE TABLE IF NOT EXISTS jobkeeper.idempotency_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    job_id       uuid NOT NULL,
    queue        text NOT NULL,
    job_type     text NOT NULL,
    result       jsonb,
    processed_at timestamptz,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_idx ON jobkeeper.idempotency_keys (expires_at);
CREATE INDEX IF NOT EXISTS idempotency_keys_job_idx ON jobkeeper.idempotency_keys (job_id);

-- Request rate limiting of the API (token buckets per principal), shared by every API process.
CREATE TABLE IF NOT EXISTS jobkeeper.rate_limits (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    key               text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    capacity          double precision NOT NULL CHECK (capacity > 0),
    refill_per_second double precision NOT NULL CHECK (refill_per_second > 0),
    tokens            double precision NOT NULL CHECK (tokens >= 0),
    refilled_at       timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS rate_limits_refilled_idx ON jobkeeper.rate_limits (refilled_at);

CREATE TABLE IF NOT EXISTS jobkeeper.queue_metrics (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id              uuid REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    queue                  text NOT NULL REFERENCES jobkeeper.queues (name) ON DELETE RESTRICT ON UPDATE CASCADE,
    captured_at            timestamptz NOT NULL DEFAULT now(),
    waiting                integer NOT NULL CHECK (waiting >= 0),
    scheduled              integer NOT NULL CHECK (scheduled >= 0),
    running                integer NOT NULL CHECK (running >= 0),
    completed              integer NOT NULL CHECK (completed >= 0),
    failed                 integer NOT NULL CHECK (failed >= 0),
    dead                   integer NOT NULL CHECK (dead >= 0),
    throughput_per_minute  double precision NOT NULL CHECK (throughput_per_minute >= 0),
    oldest_waiting_seconds double precision CHECK (oldest_waiting_seconds >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS queue_metrics_queue_captured_idx ON jobkeeper.queue_metrics (queue, captured_at);
CREATE INDEX IF NOT EXISTS queue_metrics_tenant_captured_idx ON jobkeeper.queue_metrics (tenant_id, captured_at);

CREATE TABLE IF NOT EXISTS jobkeeper.alert_history (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid REFERENCES jobkeeper.tenants (id) ON DELETE RESTRICT,
    queue           text REFERENCES jobkeeper.queues (name) ON DELETE RESTRICT ON UPDATE CASCADE,
    rule            text NOT NULL CHECK (length(rule) BETWEEN 1 AND 100),
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message         text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    deliveries      jsonb NOT NULL DEFAULT '[]'::jsonb,
    acknowledged_at timestamptz,
    acknowledged_by text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
CREATE INDEX IF NOT EXISTS alert_history_rule_queue_created_idx
    ON jobkeeper.alert_history (rule, queue, created_at);
CREATE INDEX IF NOT EXISTS alert_history_tenant_created_idx ON jobkeeper.alert_history (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS alert_history_unacknowledged_idx
    ON jobkeeper.alert_history (created_at) WHERE acknowledged_at IS NULL;

CREATE TABLE IF NOT EXISTS jobkeeper.workers (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hostname     text NOT NULL,
    pid          integer NOT NULL CHECK (pid > 0),
    queues       text[] NOT NULL DEFAULT '{}',
    job_types    text[] NOT NULL DEFAULT '{}',
    concurrency  integer NOT NULL CHECK (concurrency >= 1),
    running      integer NOT NULL DEFAULT 0 CHECK (running >= 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS workers_heartbeat_idx ON jobkeeper.workers (heartbeat_at) WHERE stopped_at IS NULL;

-- Leases: one row per singleton duty (the maintenance leader), held until expires_at (database clock).
CREATE TABLE IF NOT EXISTS jobkeeper.leases (
    name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
    holder      uuid NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- updated_at is maintained by the database on every table.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'queues', 'rate_limiters', 'job_types', 'jobs', 'dead_letter_jobs',
                             'schedules', 'idempotency_keys', 'rate_limits', 'queue_metrics', 'alert_history',
                             'workers', 'leases'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER touch_updated_at BEFORE UPDATE ON jobkeeper.%I '
                       'FOR EACH ROW EXECUTE FUNCTION jobkeeper.touch_updated_at()', t);
    END LOOP;
END $$;

-- Privileges. The API role reaches tenant data only through the policies below; it gets no privilege on
-- the jobs partitions, so it can only read jobs through the partitioned parent.
GRANT USAGE ON SCHEMA jobkeeper TO jobkeeper_api, jobkeeper_worker;
GRANT SELECT ON jobkeeper.tenants, jobkeeper.queues, jobkeeper.job_types, jobkeeper.rate_limiters,
                jobkeeper.queue_metrics, jobkeeper.workers TO jobkeeper_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobkeeper.jobs, jobkeeper.dead_letter_jobs, jobkeeper.schedules,
                jobkeeper.idempotency_keys, jobkeeper.rate_limits, jobkeeper.alert_history TO jobkeeper_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobkeeper.tenants, jobkeeper.queues, jobkeeper.job_types,
                jobkeeper.rate_limiters, jobkeeper.jobs, jobkeeper.jobs_logged, jobkeeper.jobs_ephemeral,
                jobkeeper.dead_letter_jobs, jobkeeper.schedules, jobkeeper.idempotency_keys,
                jobkeeper.rate_limits, jobkeeper.queue_metrics, jobkeeper.alert_history, jobkeeper.workers,
                jobkeeper.leases TO jobkeeper_worker;

-- Row-level security, ENABLEd and FORCEd everywhere (FORCE: the owner obeys it too). The API role sees
-- its own tenant's rows (and shared platform rows where the table has them); the worker role acts for all
-- tenants. The current tenant is set per transaction with set_config('jobkeeper.tenant_id', …, true).
DO $$
DECLARE
    t text;
    tenant_expr constant text := 'NULLIF(current_setting(''jobkeeper.tenant_id'', true), '''')::uuid';
BEGIN
    -- Tables whose every row belongs to one tenant (and the jobs partitions, for defence in depth).
    FOREACH t IN ARRAY ARRAY['jobs', 'jobs_logged', 'jobs_ephemeral', 'dead_letter_jobs', 'schedules',
                             'idempotency_keys', 'rate_limits', 'queue_metrics', 'alert_history'] LOOP
        EXECUTE format('ALTER TABLE jobkeeper.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE jobkeeper.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON jobkeeper.%I TO jobkeeper_api '
                       'USING (tenant_id = %s) WITH CHECK (tenant_id = %s)', t, tenant_expr, tenant_expr);
        EXECUTE format('DROP POLICY IF EXISTS worker_all_tenants ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY worker_all_tenants ON jobkeeper.%I TO jobkeeper_worker '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
    -- Shared platform rows (tenant_id NULL) are readable by every tenant; a tenant writes only its own.
    FOREACH t IN ARRAY ARRAY['queues', 'rate_limiters'] LOOP
        EXECUTE format('ALTER TABLE jobkeeper.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE jobkeeper.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON jobkeeper.%I TO jobkeeper_api '
                       'USING (tenant_id = %s) WITH CHECK (tenant_id = %s)', t, tenant_expr, tenant_expr);
        EXECUTE format('DROP POLICY IF EXISTS shared_read ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY shared_read ON jobkeeper.%I FOR SELECT TO jobkeeper_api '
                       'USING (tenant_id IS NULL)', t);
        EXECUTE format('DROP POLICY IF EXISTS worker_all_tenants ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY worker_all_tenants ON jobkeeper.%I TO jobkeeper_worker '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
    -- A tenant sees its own tenants row.
    ALTER TABLE jobkeeper.tenants ENABLE ROW LEVEL SECURITY;
    ALTER TABLE jobkeeper.tenants FORCE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS tenant_isolation ON jobkeeper.tenants;
    EXECUTE format('CREATE POLICY tenant_isolation ON jobkeeper.tenants FOR SELECT TO jobkeeper_api '
                   'USING (id = %s)', tenant_expr);
    DROP POLICY IF EXISTS worker_all_tenants ON jobkeeper.tenants;
    CREATE POLICY worker_all_tenants ON jobkeeper.tenants TO jobkeeper_worker USING (true) WITH CHECK (true);
    -- Platform tables without tenant data: readable by the API role, written by workers.
    FOREACH t IN ARRAY ARRAY['job_types', 'workers', 'leases'] LOOP
        EXECUTE format('ALTER TABLE jobkeeper.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE jobkeeper.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS platform_read ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY platform_read ON jobkeeper.%I FOR SELECT TO jobkeeper_api USING (true)', t);
        EXECUTE format('DROP POLICY IF EXISTS worker_all_tenants ON jobkeeper.%I', t);
        EXECUTE format('CREATE POLICY worker_all_tenants ON jobkeeper.%I TO jobkeeper_worker '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- Seed data (DESIGN §3, §7). Written as the worker role so that a non-superuser owner passes FORCEd RLS.
SET LOCAL ROLE jobkeeper_worker;

INSERT INTO jobkeeper.tenants (id, name, slug)
VALUES ('00000000-0000-0000-0000-000000000001', 'Development', 'development')
ON CONFLICT DO NOTHING;

INSERT INTO jobkeeper.queues (name, tier, max_attempts, backoff, backoff_base_seconds, backoff_max_seconds,
                              backoff_jitter, timeout_seconds, default_priority)
VALUES ('money',         'durable',   10, 'exponential',  2, 3600, true,  300, 7),
       ('communication', 'fast',       3, 'fixed',        5,    5, false,  60, 5),
       ('background',    'ephemeral',  2, 'fixed',       10,   10, false, 600, 5)
ON CONFLICT DO NOTHING;

INSERT INTO jobkeeper.rate_limiters (name, rate_per_second, burst, max_concurrency, tokens)
VALUES ('stripe',     100, 20, 50, 20),
       ('twilio',      10,  5, 10,  5),
       ('sendgrid',    50, 10, 20, 10),
       ('solana_rpc',  25,  5, 10,  5)
ON CONFLICT DO NOTHING;

INSERT INTO jobkeeper.job_types (name, queue, limiter, idempotency_ttl_seconds)
VALUES ('payment-process',  'money',         'stripe',     90 * 86400),
       ('refund-process',   'money',         'stripe',     90 * 86400),
       ('payout-process',   'money',         'stripe',     90 * 86400),
       ('nft-mint',         'money',         'solana_rpc', 365 * 86400),
       ('send-email',       'communication', 'sendgrid',   86400),
       ('send-sms',         'communication', 'twilio',     86400),
       ('send-push',        'communication', NULL,         86400),
       ('analytics-track',  'background',    NULL,         86400),
       ('cleanup-old-data', 'background',    NULL,         NULL),
       ('generate-report',  'background',    NULL,         NULL)
ON CONFLICT DO NOTHING;

RESET ROLE;
"""

DOWNGRADE = r"""
-- Policies, then row-level security, then the tables in reverse order of dependency.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['jobs', 'jobs_logged', 'jobs_ephemeral', 'dead_letter_jobs', 'schedules',
                             'idempotency_keys', 'rate_limits', 'queue_metrics', 'alert_history', 'queues',
                             'rate_limiters', 'tenants', 'job_types', 'workers', 'leases'] LOOP
        IF to_regclass('jobkeeper.' || t) IS NOT NULL THEN
            EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON jobkeeper.%I', t);
            EXECUTE format('DROP POLICY IF EXISTS shared_read ON jobkeeper.%I', t);
            EXECUTE format('DROP POLICY IF EXISTS platform_read ON jobkeeper.%I', t);
            EXECUTE format('DROP POLICY IF EXISTS worker_all_tenants ON jobkeeper.%I', t);
            EXECUTE format('ALTER TABLE jobkeeper.%I NO FORCE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE jobkeeper.%I DISABLE ROW LEVEL SECURITY', t);
        END IF;
    END LOOP;
END $$;

-- Tables that hold no seed rows, those that refer to others first.
DROP TABLE IF EXISTS jobkeeper.leases;
DROP TABLE IF EXISTS jobkeeper.workers;
DROP TABLE IF EXISTS jobkeeper.alert_history;
DROP TABLE IF EXISTS jobkeeper.queue_metrics;
DROP TABLE IF EXISTS jobkeeper.rate_limits;
DROP TABLE IF EXISTS jobkeeper.idempotency_keys;
DROP TABLE IF EXISTS jobkeeper.schedules;
DROP TABLE IF EXISTS jobkeeper.dead_letter_jobs;
DROP TABLE IF EXISTS jobkeeper.jobs;

-- Seed rows are deleted explicitly (seed 001 MIG16), each just before its table is dropped, once nothing
-- refers to them any more: deleted earlier, a job, schedule or alert in a seeded queue or of the
-- development tenant, or a user's job type or limiter group naming a seeded limiter, makes the
-- downgrade fail on a foreign key.
DELETE FROM jobkeeper.job_types WHERE name IN ('payment-process', 'refund-process', 'payout-process',
    'nft-mint', 'send-email', 'send-sms', 'send-push', 'analytics-track', 'cleanup-old-data', 'generate-report');
DROP TABLE IF EXISTS jobkeeper.job_types;
UPDATE jobkeeper.rate_limiters SET limiter_group = NULL
WHERE limiter_group IN ('stripe', 'twilio', 'sendgrid', 'solana_rpc');
DELETE FROM jobkeeper.rate_limiters WHERE name IN ('stripe', 'twilio', 'sendgrid', 'solana_rpc');
DROP TABLE IF EXISTS jobkeeper.rate_limiters;
DELETE FROM jobkeeper.queues WHERE name IN ('money', 'communication', 'background');
DROP TABLE IF EXISTS jobkeeper.queues;
DELETE FROM jobkeeper.tenants WHERE id = '00000000-0000-0000-0000-000000000001';
DROP TABLE IF EXISTS jobkeeper.tenants;
DROP FUNCTION IF EXISTS jobkeeper.touch_updated_at();

-- The owner stays a member of the roles: memberships are cluster-wide, and another database of this
-- cluster may still rely on them (its owner sees its rows under FORCEd RLS through jobkeeper_worker).
-- Dropping the roles below removes the memberships with them.
REVOKE ALL ON SCHEMA jobkeeper FROM jobkeeper_api, jobkeeper_worker;

-- Roles are shared by the whole cluster: drop them unless another database still grants them something.
DO $$
BEGIN
    DROP ROLE IF EXISTS jobkeeper_api;
    DROP ROLE IF EXISTS jobkeeper_worker;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'jobkeeper roles kept: another database of this cluster still uses them';
END $$;
"""


def upgrade() -> None:
    run(UPGRADE)


def downgrade() -> None:
    run(DOWNGRADE)
