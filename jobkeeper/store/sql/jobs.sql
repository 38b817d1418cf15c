-- Named queries for jobs. Each starts with a `-- name:` line; `jobkeeper.store.queries` loads them once.
-- Time comes from the database: every time-sensitive query takes %(now)s, NULL meaning now().

-- name: insert_jobs
-- The arrays travel in binary (`%(name)b`), as in record_outcomes: cheaper for the client to send.
-- Bulk enqueue in one statement. Idempotency keys are claimed set-based (unique per tenant and key);
-- a key still alive keeps pointing at its original job, an expired one is taken over by the new job, and so
-- is a key whose job no longer exists (an ephemeral-tier job lost to crash recovery, which empties the
-- unlogged partition but not the logged keys). Only a conflicting key looks its job up, once. The lookup
-- sees this statement's snapshot: a key committed after it (a concurrent enqueue of the same key, whose job
-- this snapshot cannot see yet) is not visible in it either, and is never taken for vanished.
-- One NOTIFY on `jobkeeper_jobs` per statement (payload: the queue names, no job data) wakes idle
-- workers; the client skips it when it notified moments ago (%(notify)s false), bounded by the poll.
-- synchronous_commit is set for this transaction only (off for the fast and ephemeral tiers; NULL keeps
-- the caller's setting when the enqueue is part of the caller's own transaction).
-- A job with parents (waiting true; a NULL or shorter array means false) is inserted `waiting`, and
-- `add_dependencies` then links it in the same transaction; a job that later jobs of the same call
-- depend on is inserted with has_dependents set.
WITH clock AS MATERIALIZED (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now,
           set_config('synchronous_commit',
                      COALESCE(%(synchronous_commit)s::text, current_setting('synchronous_commit')),
                      true) AS synchronous_commit
),
input AS MATERIALIZED (
    SELECT gen_random_uuid() AS id, t.tenant_id, t.queue, t.type, t.payload, t.tier, t.priority,
           t.max_attempts, t.delay, t.run_at, t.key_ttl, t.ord, COALESCE(t.waiting, false) AS waiting,
           COALESCE(t.has_dependents, false) AS has_dependents,
           -- A derived key's time bucket (send-email: day, send-sms: hour) comes from the database clock.
           t.idempotency_key || CASE t.key_bucket
               WHEN 'day' THEN ':' || to_char(clock.now AT TIME ZONE 'UTC', 'YYYY-MM-DD')
               WHEN 'hour' THEN ':' || to_char(clock.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')
               ELSE '' END AS idempotency_key
    FROM unnest(
        %(tenant_ids)b::uuid[], %(queues)b::text[], %(types)b::text[], %(payloads)b::text[],
        %(tiers)b::text[], %(priorities)b::smallint[], %(max_attempts)b::integer[],
        %(delays)b::float8[], %(run_ats)b::timestamptz[], %(keys)b::text[], %(key_ttls)b::float8[],
        %(key_buckets)b::text[], %(waiting)b::boolean[], %(has_dependents)b::boolean[]
    ) WITH ORDINALITY AS t(tenant_id, queue, type, payload, tier, priority, max_attempts, delay, run_at,
                           idempotency_key, key_ttl, key_bucket, waiting, has_dependents, ord)
    CROSS JOIN clock
),
keys AS (
    INSERT INTO jobkeeper.idempotency_keys AS k (tenant_id, key, job_id, queue, job_type, expires_at)
    SELECT DISTINCT ON (i.tenant_id, i.idempotency_key)
           i.tenant_id, i.idempotency_key, i.id, i.queue, i.type,
           clock.now + make_interval(secs => i.key_ttl)
    FROM input i CROSS JOIN clock
    WHERE i.idempotency_key IS NOT NULL
    ORDER BY i.tenant_id, i.idempotency_key, i.ord
    ON CONFLICT (tenant_id, key) DO UPDATE
    SET (job_id, queue, job_type, result, processed_at, expires_at) = (
        SELECT CASE WHEN free THEN excluded.job_id ELSE k.job_id END,
               CASE WHEN free THEN excluded.queue ELSE k.queue END,
               CASE WHEN free THEN excluded.job_type ELSE k.job_type END,
               CASE WHEN free THEN NULL ELSE k.result END,
               CASE WHEN free THEN NULL ELSE k.processed_at END,
               CASE WHEN free THEN excluded.expires_at ELSE k.expires_at END
        FROM (SELECT k.expires_at <= (SELECT now FROM clock)
                     OR (EXISTS (SELECT FROM jobkeeper.idempotency_keys seen
                                 WHERE seen.id = k.id AND seen.job_id = k.job_id)
                         AND NOT EXISTS (SELECT FROM jobkeeper.jobs j WHERE j.id = k.job_id)) AS free) AS f
    )
    RETURNING k.tenant_id, k.key, k.job_id
),
inserted AS (
    INSERT INTO jobkeeper.jobs (id, tenant_id, queue, type, payload, status, tier, priority, max_attempts,
                                idempotency_key, scheduled_at, has_dependents)
    SELECT i.id, i.tenant_id, i.queue, i.type, i.payload::jsonb,
           CASE WHEN i.waiting THEN 'waiting' ELSE 'pending' END, i.tier, i.priority, i.max_attempts,
           i.idempotency_key, COALESCE(i.run_at, clock.now + make_interval(secs => i.delay)),
           i.has_dependents
    FROM input i CROSS JOIN clock
    WHERE i.idempotency_key IS NULL OR i.id IN (SELECT job_id FROM keys)
    RETURNING id, tenant_id, queue, type, payload, status, tier, priority, attempts, max_attempts,
              last_error, errors, result, progress, idempotency_key, scheduled_at, started_at,
              completed_at, created_at, updated_at
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM inserted
    WHERE %(notify)s::boolean AND status = 'pending'
    HAVING count(*) > 0
)
SELECT i.ord, COALESCE(k.job_id, i.id) AS resolved_id, ins.*
FROM input i
LEFT JOIN keys k ON k.tenant_id = i.tenant_id AND k.key = i.idempotency_key
LEFT JOIN inserted ins ON ins.id = i.id
LEFT JOIN notified ON true
ORDER BY i.ord;

-- name: get_jobs
SELECT id, tenant_id, queue, type, payload, status, tier, priority, attempts, max_attempts,
       last_error, errors, result, progress, idempotency_key, scheduled_at, started_at,
       completed_at, created_at, updated_at
FROM jobkeeper.jobs
WHERE id = ANY(%(ids)s::uuid[]);

-- name: missing_tenants
SELECT DISTINCT t.id
FROM unnest(%(tenant_ids)s::uuid[]) AS t(id)
WHERE NOT EXISTS (SELECT FROM jobkeeper.tenants WHERE tenants.id = t.id);

-- name: load_queues
SELECT name, tenant_id, tier, max_attempts, backoff, backoff_base_seconds, backoff_max_seconds,
       backoff_jitter, timeout_seconds, default_priority, paused
FROM jobkeeper.queues
ORDER BY name;

-- name: load_job_types
SELECT name, queue, max_attempts, timeout_seconds, priority, limiter, idempotency_ttl_seconds
FROM jobkeeper.job_types
ORDER BY name;

-- name: declare_job_type
-- Make a job type known before any worker handling it has run (`jobkeeper types declare`). A new type
-- goes to %(default_queue)s unless %(queue)s is given; declaring a known type again changes only its queue,
-- and only when one is given. `created` is false for a type that existed.
INSERT INTO jobkeeper.job_types AS t (name, queue)
VALUES (%(name)s::text, COALESCE(%(queue)s::text, %(default_queue)s::text))
ON CONFLICT (name) DO UPDATE SET queue = COALESCE(%(queue)s::text, t.queue)
RETURNING name, queue, max_attempts, timeout_seconds, priority, limiter, idempotency_ttl_seconds,
          xmax = 0 AS created;
