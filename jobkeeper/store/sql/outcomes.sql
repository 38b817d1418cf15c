-- Named queries of an attempt's life: the claim, the batched outcomes and progress, and the rescue of
-- jobs whose worker was lost. This is the worker's hot path.
-- Time comes from the database: a time-sensitive query takes %(now)s, NULL meaning now().
-- Every write to a claimed job is guarded by `status = 'processing' AND worker_id = <this worker>`, so a
-- worker never overwrites a job that the rescuer returned, that was cancelled, or that another worker holds.

-- name: claim_jobs
-- Claim up to %(limit)s ready jobs of the given types in one statement, fairly between tenants.
-- 1. Tenants with pending jobs are enumerated per open queue by a loose index scan (one probe each);
--    those with a ready job of these types (and room under their cap) take part. The probe orders by the
--    whole key of jobs_fair_claim_idx, which no other index provides: ordered by tenant_id alone, the
--    planner could walk jobs_tenant_created_idx through every finished job (docs/benchmarks.md#claim-query).
-- 2. Each (queue, tenant) contributes a bounded window of its best jobs (about four batches in all),
--    read from jobs_fair_claim_idx and locked with SKIP LOCKED (other workers take the next rows).
-- 3. Candidates are ranked within their tenant; the lowest ranks go first, then priority, then
--    scheduled_at: a tenant's flood cannot push another tenant's jobs out of the batch.
-- A tenant with max_concurrency gets no more than its cap minus its running jobs (counted at claim time:
-- two workers claiming at the same instant may overshoot it by their in-flight claims).
-- The claim commits synchronously only when it holds a durable job (docs/concepts.md#durability-tiers).
WITH RECURSIVE
clock AS MATERIALIZED (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now
),
open_queues AS MATERIALIZED (
    SELECT name
    FROM jobkeeper.queues
    WHERE NOT paused AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[]))
),
tenants_with_work (queue, tenant_id) AS (
    SELECT q.name,
           (SELECT j.tenant_id FROM jobkeeper.jobs j
            WHERE j.status = 'pending' AND j.queue = q.name
            ORDER BY j.tenant_id, j.priority DESC, j.scheduled_at LIMIT 1)
    FROM open_queues q
    UNION ALL
    SELECT w.queue,
           (SELECT j.tenant_id FROM jobkeeper.jobs j
            WHERE j.status = 'pending' AND j.queue = w.queue AND j.tenant_id > w.tenant_id
            ORDER BY j.tenant_id, j.priority DESC, j.scheduled_at LIMIT 1)
    FROM tenants_with_work w
    WHERE w.tenant_id IS NOT NULL
),
room AS MATERIALIZED (
    -- Tenants with a ready job of these types, and how many more jobs each may start: the batch, or
    -- what its concurrency cap leaves.
    SELECT w.queue, w.tenant_id,
           CASE WHEN tn.max_concurrency IS NULL THEN %(limit)s::integer
                ELSE greatest(0, tn.max_concurrency - (
                         SELECT count(*) FROM jobkeeper.jobs r
                         WHERE r.status = 'processing' AND r.tenant_id = w.tenant_id))::integer
           END AS room
    FROM tenants_with_work w
    JOIN jobkeeper.tenants tn ON tn.id = w.tenant_id
    CROSS JOIN clock
    -- A LATERAL with ORDER BY and LIMIT, not EXISTS: one walk down jobs_fair_claim_idx per tenant, never
    -- a hashed or sequential scan of the table (the ORDER BY keeps the planner on the index).
    CROSS JOIN LATERAL (
        SELECT FROM jobkeeper.jobs j
        WHERE j.status = 'pending' AND j.queue = w.queue AND j.tenant_id = w.tenant_id
          AND j.scheduled_at <= clock.now AND j.type = ANY(%(types)s::text[])
        ORDER BY j.priority DESC, j.scheduled_at
        LIMIT 1
    ) ready
    WHERE w.tenant_id IS NOT NULL
),
window_size AS (
    -- About four batches of candidates in all, at least one per tenant, at most one batch per tenant.
    SELECT least(%(limit)s::integer, ceil(4.0 * %(limit)s::integer / greatest(count(*), 1)))::integer AS per_tenant
    FROM room
    WHERE room > 0
),
candidates AS (
    SELECT c.id, c.tier, c.tenant_id, c.priority, c.scheduled_at, r.room
    FROM room r
    CROSS JOIN window_size w
    CROSS JOIN clock
    CROSS JOIN LATERAL (
        SELECT j.id, j.tier, j.tenant_id, j.priority, j.scheduled_at
        FROM jobkeeper.jobs j
        WHERE j.status = 'pending' AND j.queue = r.queue AND j.tenant_id = r.tenant_id
          AND j.scheduled_at <= clock.now AND j.type = ANY(%(types)s::text[])
        ORDER BY j.priority DESC, j.scheduled_at
        LIMIT least(w.per_tenant, r.room)
        FOR UPDATE OF j SKIP LOCKED
    ) c
    WHERE r.room > 0
),
ranked AS (
    SELECT c.*,
           row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.priority DESC, c.scheduled_at) AS tenant_rank
    FROM candidates c
),
picked AS (
    SELECT id, tier
    FROM ranked
    WHERE tenant_rank <= room
    ORDER BY tenant_rank, priority DESC, scheduled_at
    LIMIT %(limit)s
),
claimed AS (
    UPDATE jobkeeper.jobs j
    SET status = 'processing',
        attempts = j.attempts + 1,
        started_at = clock.now,
        heartbeat_at = clock.now,
        worker_id = %(worker_id)s
    FROM picked p, clock
    -- The id array makes the primary key the way in, whatever the plan thinks `picked` holds: in the
    -- claim's generic plan the batch size is unknown, and with an empty table's statistics the plan would
    -- hash every row of jobs (docs/benchmarks.md#claim-query).
    WHERE j.id = ANY (ARRAY(SELECT id FROM picked)) AND j.id = p.id AND j.tier = p.tier
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
              j.max_attempts, j.timeout_seconds, j.last_error, j.errors, j.result, j.progress,
              j.idempotency_key, j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at
)
SELECT c.*,
       set_config('synchronous_commit',
                  CASE WHEN bool_or(c.tier = 'durable') OVER () THEN current_setting('synchronous_commit')
                       ELSE 'off' END,
                  true) AS synchronous_commit
FROM claimed c
ORDER BY c.priority DESC, c.scheduled_at;

-- name: record_outcomes
-- Write a batch of outcomes in one statement. kind: complete | retry | fail | cancel | snooze | release.
-- Each outcome names the attempt it ends, so it can never land on a later claim of the same job.
--   retry:   pending again after %(delays)s seconds; attempts spent: failed once they reach max_attempts.
--   snooze:  pending again after the delay; the attempt is given back (attempts - 1).
--   release: pending again now, the attempt given back (graceful shutdown).
--   A job whose cancellation was requested ends cancelled instead of going back to pending.
-- A failed job gets its dead-letter row in the same statement; a completed job with an idempotency key
-- stores its result on the key. Commits synchronously only when a durable job is in the batch.
-- The arrays travel in binary (`%(name)b`): psycopg's text format quotes every element of a text array
-- after a regular-expression test; binary halves the cost of sending a batch
-- (docs/benchmarks.md#outcome-batch).
-- has_dependents comes back for each job: for the finished ones that have it, the completer runs
-- `settle_dependents` once this statement has committed (dependencies.sql says why not in here).
WITH input AS (
    SELECT *
    FROM unnest(%(ids)b::uuid[], %(tiers)b::text[], %(attempts)b::integer[], %(kinds)b::text[],
                %(results)b::text[], %(errors)b::text[], %(delays)b::float8[])
         AS t(id, tier, attempt, kind, result, error, delay)
),
clock AS MATERIALIZED (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now,
           set_config('synchronous_commit',
                      CASE WHEN 'durable' = ANY(%(tiers)b::text[]) THEN current_setting('synchronous_commit')
                           ELSE 'off' END,
                      true) AS synchronous_commit
),
updated AS (
    UPDATE jobkeeper.jobs j
    SET status = CASE
                     WHEN i.kind = 'complete' THEN 'completed'
                     WHEN i.kind = 'fail' THEN 'failed'
                     WHEN i.kind = 'cancel' OR j.cancel_requested THEN 'cancelled'
                     WHEN i.kind = 'retry' AND j.attempts >= j.max_attempts THEN 'failed'
                     ELSE 'pending'
                 END,
        -- NULL exactly when the status above is pending.
        completed_at = CASE
                           WHEN i.kind IN ('retry', 'snooze', 'release') AND NOT j.cancel_requested
                                AND NOT (i.kind = 'retry' AND j.attempts >= j.max_attempts) THEN NULL
                           ELSE clock.now
                       END,
        attempts = CASE WHEN i.kind IN ('snooze', 'release') THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
        -- Moved only when the job goes back to pending: a last failed attempt or a cancellation keeps
        -- the time it was due (a finished job is never due again; the rescuer does the same).
        scheduled_at = CASE WHEN i.kind IN ('retry', 'snooze', 'release') AND NOT j.cancel_requested
                                 AND NOT (i.kind = 'retry' AND j.attempts >= j.max_attempts)
                            THEN clock.now + make_interval(secs => i.delay)
                            ELSE j.scheduled_at END,
        result = CASE WHEN i.kind = 'complete' THEN i.result::jsonb ELSE j.result END,
        errors = CASE WHEN i.error IS NULL THEN j.errors
                      ELSE j.errors || jsonb_build_array(
                               i.error::jsonb || jsonb_build_object('at', clock.now, 'attempt', j.attempts))
                 END,
        last_error = CASE WHEN i.error IS NULL THEN j.last_error
                          ELSE concat_ws(': ', i.error::jsonb ->> 'type', i.error::jsonb ->> 'message')
                     END,
        worker_id = NULL,
        heartbeat_at = NULL
    FROM input i, clock
    WHERE j.id = i.id AND j.tier = i.tier AND j.attempts = i.attempt
      AND j.status = 'processing' AND j.worker_id = %(worker_id)s
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.priority, j.attempts,
              j.max_attempts, j.last_error, j.errors, j.result, j.idempotency_key, j.completed_at,
              j.has_dependents
),
dead AS (
    INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,
                                            max_attempts, last_error, errors, idempotency_key, failed_at)
    SELECT u.tenant_id, u.id, u.queue, u.type, u.payload, u.priority, u.attempts, u.max_attempts,
           u.last_error, u.errors, u.idempotency_key, u.completed_at
    FROM updated u
    WHERE u.status = 'failed'
    ON CONFLICT (tenant_id, job_id) DO UPDATE
    -- The job failed again after a retry of its (replayed) dead letter: the dead letter is live again.
    SET attempts = excluded.attempts, max_attempts = excluded.max_attempts, last_error = excluded.last_error,
        errors = excluded.errors, failed_at = excluded.failed_at, replayed_at = NULL, replayed_job_id = NULL
),
keys AS (
    UPDATE jobkeeper.idempotency_keys k
    SET result = u.result, processed_at = u.completed_at
    FROM updated u
    WHERE u.status = 'completed' AND u.idempotency_key IS NOT NULL
      AND k.tenant_id = u.tenant_id AND k.key = u.idempotency_key AND k.job_id = u.id
)
SELECT u.id, u.status, u.attempts, u.has_dependents
FROM updated u;

-- name: record_progress
-- Latest progress of running jobs; losing the last few on an OS crash is harmless.
WITH settings AS MATERIALIZED (
    SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit
)
UPDATE jobkeeper.jobs j
SET progress = p.progress::jsonb
FROM unnest(%(ids)s::uuid[], %(tiers)s::text[], %(progress)s::text[]) AS p(id, tier, progress), settings
WHERE j.id = p.id AND j.tier = p.tier
  AND j.status = 'processing' AND j.worker_id = %(worker_id)s;

-- name: rescue_stale_jobs
-- Jobs whose heartbeat is older than the lease (database clock) lost their worker. They go back to
-- pending, or to failed (and the dead-letter table) when their attempts are spent, or to cancelled when a
-- cancel was requested. Rows are locked first (SKIP LOCKED), so a worker finishing the same job either
-- commits before (the job is no longer processing: untouched) or finds it rescued (its guarded update
-- changes nothing and the job runs again: delivery is at-least-once). A failed or cancelled job with
-- dependents is settled next (`settle_dependents`), cancelling its waiting children.
WITH clock AS MATERIALIZED (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now
),
stale AS (
    SELECT j.id, j.tier
    FROM jobkeeper.jobs j, clock
    WHERE j.status = 'processing'
      AND j.heartbeat_at < clock.now - make_interval(secs => %(lease_seconds)s)
    ORDER BY j.heartbeat_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
),
rescued AS (
    UPDATE jobkeeper.jobs j
    SET status = CASE WHEN j.cancel_requested THEN 'cancelled'
                      WHEN j.attempts >= j.max_attempts THEN 'failed'
                      ELSE 'pending' END,
        scheduled_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN j.scheduled_at
                            ELSE clock.now END,
        completed_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN clock.now END,
        worker_id = NULL,
        heartbeat_at = NULL,
        last_error = format('worker %%s lost: no heartbeat for %%s s', j.worker_id,
                            round(extract(epoch FROM clock.now - j.heartbeat_at))),
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'at', clock.now,
            'attempt', j.attempts,
            'type', 'WorkerLost',
            'message', format('worker %%s lost: no heartbeat for %%s s', j.worker_id,
                              round(extract(epoch FROM clock.now - j.heartbeat_at))),
            'traceback', NULL))
    FROM stale, clock
    WHERE j.id = stale.id AND j.tier = stale.tier
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts,
              j.last_error, j.errors, j.idempotency_key, j.status, j.has_dependents
),
dead AS (
    INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,
                                            max_attempts, last_error, errors, idempotency_key, failed_at)
    SELECT r.tenant_id, r.id, r.queue, r.type, r.payload, r.priority, r.attempts, r.max_attempts,
           r.last_error, r.errors, r.idempotency_key, clock.now
    FROM rescued r, clock
    WHERE r.status = 'failed'
    ON CONFLICT (tenant_id, job_id) DO UPDATE
    -- The job failed again after a retry of its (replayed) dead letter: the dead letter is live again.
    SET attempts = excluded.attempts, max_attempts = excluded.max_attempts, last_error = excluded.last_error,
        errors = excluded.errors, failed_at = excluded.failed_at, replayed_at = NULL, replayed_job_id = NULL
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM rescued
    WHERE status = 'pending'
    HAVING count(*) > 0
)
SELECT r.id, r.status, r.has_dependents
FROM rescued r
LEFT JOIN notified ON true;
