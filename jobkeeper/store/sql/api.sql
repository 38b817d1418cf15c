-- Named queries of the HTTP API (jobkeeper/api). Each request runs in one transaction that starts with
-- `api_enter` (role and tenant, both transaction-local) and `api_tenant_status`, sent in the same round trip
-- as the request's first query (psycopg pipeline). Row-level security then scopes every statement below to
-- the caller's tenant; the explicit tenant filters are for platform admins and for the planner.
-- Optional filters take NULL for "any".

-- name: api_enter
-- The role is one of two constants chosen by the code (jobkeeper_api for tenants, jobkeeper_worker for
-- platform admins); set_config('role', …, true) is SET LOCAL ROLE with a parameter. An empty tenant
-- matches no row under the tenant policy. tenant_active is the token's tenant's flag, NULL when there
-- is no such tenant (read as the connection's own role: the new role applies from the next statement).
SELECT set_config('role', %(role)s::text, true) AS role,
       set_config('jobkeeper.tenant_id', %(tenant_id)s::text, true) AS tenant_id,
       set_config('synchronous_commit',
                  COALESCE(%(synchronous_commit)s::text, current_setting('synchronous_commit')),
                  true) AS synchronous_commit,
       now() AS now,
       (SELECT active FROM jobkeeper.tenants WHERE id = %(principal_tenant)s::uuid) AS tenant_active;

-- name: api_take_tokens
-- One token bucket per (tenant, key), shared by every API process. The bucket refills continuously from
-- the database clock; a take of %(cost)s tokens either succeeds (a row comes back from the upsert) or
-- leaves the row untouched (the ON CONFLICT … WHERE is false), in which case `retry_after` says how many
-- seconds until enough tokens are back, from the row as this statement found it. It runs ahead of the
-- request's tenant check: a tenant that is not registered gets no row (and no take), never an error.
WITH settings AS MATERIALIZED (
    -- Run as a transaction of its own: it commits asynchronously (the request's own commit follows it
    -- in the log) and its row lock ends with the statement.
    SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit
),
taken AS (
    INSERT INTO jobkeeper.rate_limits AS r (tenant_id, key, capacity, refill_per_second, tokens, refilled_at)
    SELECT %(tenant_id)s::uuid, %(key)s::text, %(capacity)s::float8, %(refill_per_second)s::float8,
           %(capacity)s::float8 - %(cost)s::float8, now()
    WHERE EXISTS (SELECT FROM jobkeeper.tenants WHERE id = %(tenant_id)s::uuid)
    ON CONFLICT (tenant_id, key) DO UPDATE
    SET tokens = least(excluded.capacity,
                       r.tokens + greatest(extract(epoch FROM now() - r.refilled_at), 0) * excluded.refill_per_second)
                 - %(cost)s::float8,
        refilled_at = now(),
        capacity = excluded.capacity,
        refill_per_second = excluded.refill_per_second
    WHERE least(excluded.capacity,
                r.tokens + greatest(extract(epoch FROM now() - r.refilled_at), 0) * excluded.refill_per_second)
          >= %(cost)s::float8
    RETURNING r.tokens
)
SELECT (SELECT synchronous_commit FROM settings) AS synchronous_commit,
       EXISTS (SELECT FROM taken) AS granted,
       (SELECT tokens FROM taken) AS remaining,
       (SELECT greatest(%(cost)s::float8 - least(r.capacity,
                            r.tokens + greatest(extract(epoch FROM now() - r.refilled_at), 0) * r.refill_per_second),
                        0) / %(refill_per_second)s::float8
        FROM jobkeeper.rate_limits r
        WHERE r.tenant_id = %(tenant_id)s::uuid AND r.key = %(key)s::text) AS retry_after;

-- name: api_give_back_tokens
-- A granted take whose request then failed: its tokens go back (never above the capacity).
UPDATE jobkeeper.rate_limits
SET tokens = least(capacity, tokens + %(cost)s::float8)
WHERE tenant_id = %(tenant_id)s::uuid AND key = %(key)s::text
RETURNING tokens;

-- name: api_list_jobs
-- planned per call: its optional filters need a plan made for their values.
-- Newest first, keyset-paged on (created_at, id): a platform admin's list reads jobs_created_idx, a
-- tenant's jobs_tenant_created_idx, so page N costs what page 1 costs. A queue filter also names the
-- queue's tier, so only its partition is read (run-time pruning). The payload filter (JSON containment)
-- has no index (one would be written on every claim and completion): it looks at no more than the
-- %(scan_limit)s jobs past the cursor and stops at %(limit)s matches; when it finds fewer,
-- `api_list_jobs_edge` says where its window ended (docs/api.md, "List jobs").
SELECT w.id, w.tenant_id, w.queue, w.type, w.payload, w.status, w.tier, w.priority, w.attempts,
       w.max_attempts, w.last_error, w.errors, w.result, w.progress, w.idempotency_key, w.scheduled_at,
       w.started_at, w.completed_at, w.created_at, w.updated_at
FROM (
    SELECT j.*
    FROM jobkeeper.jobs j
    WHERE
    (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
    AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
    AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
    AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
    AND (%(queue)s::text IS NULL
         OR j.tier = (SELECT q.tier FROM jobkeeper.queues q WHERE q.name = %(queue)s::text))
    AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
    AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
    AND (%(before_created_at)s::timestamptz IS NULL
         OR (j.created_at, j.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
    ORDER BY j.created_at DESC, j.id DESC
    LIMIT CASE WHEN %(payload)s::jsonb IS NULL THEN %(limit)s::int ELSE %(scan_limit)s::int END
) w
WHERE %(payload)s::jsonb IS NULL OR w.payload @> %(payload)s::jsonb
ORDER BY w.created_at DESC, w.id DESC
LIMIT %(limit)s;

-- name: api_list_jobs_edge
-- planned per call: its optional filters need a plan made for their values.
-- The oldest job a payload filter's window (`api_list_jobs`) looked at, when the window was full: the next
-- page starts there. No row: the window reached the end of the list.
SELECT j.created_at, j.id
FROM jobkeeper.jobs j
WHERE
    (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
    AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
    AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
    AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
    AND (%(queue)s::text IS NULL
         OR j.tier = (SELECT q.tier FROM jobkeeper.queues q WHERE q.name = %(queue)s::text))
    AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
    AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
    AND (%(before_created_at)s::timestamptz IS NULL
         OR (j.created_at, j.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY j.created_at DESC, j.id DESC
OFFSET %(scan_limit)s::int - 1
LIMIT 1;

-- name: api_retry_job
-- A failed or cancelled job goes back to pending with a fresh attempt budget; its error history is kept.
-- Its dead-letter row (if any) is marked replayed as this same job, a result stored on its idempotency key
-- is cleared, and idle workers are woken. `changed` is false when the job exists but was not retryable.
-- `retries` keeps how the run before ended (status, time, attempts, dead letter): the retry resets them.
WITH retried AS (
    UPDATE jobkeeper.jobs j
    SET retries = j.retries || jsonb_build_array(jsonb_build_object(
            'at', now(), 'ended', j.status, 'ended_at', j.completed_at, 'attempts', j.attempts,
            'dead_lettered', EXISTS (SELECT FROM jobkeeper.dead_letter_jobs d
                                     WHERE d.tenant_id = j.tenant_id AND d.job_id = j.id
                                       AND d.replayed_at IS NULL))),
        status = 'pending',
        attempts = 0,
        scheduled_at = now(),
        started_at = NULL,
        completed_at = NULL,
        cancel_requested = false,
        worker_id = NULL,
        heartbeat_at = NULL,
        result = NULL,
        progress = NULL
    WHERE j.id = %(id)s::uuid AND j.status IN ('failed', 'cancelled')
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
              j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key,
              j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at
),
marked AS (
    UPDATE jobkeeper.dead_letter_jobs d
    SET replayed_at = now(), replayed_job_id = r.id
    FROM retried r
    WHERE d.tenant_id = r.tenant_id AND d.job_id = r.id AND d.replayed_at IS NULL
),
rekeyed AS (
    UPDATE jobkeeper.idempotency_keys k
    SET result = NULL, processed_at = NULL
    FROM retried r
    WHERE r.idempotency_key IS NOT NULL AND k.tenant_id = r.tenant_id AND k.key = r.idempotency_key
      AND k.job_id = r.id
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM retried
    HAVING count(*) > 0
)
SELECT r.*, true AS changed
FROM retried r
LEFT JOIN notified ON true
UNION ALL
SELECT j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
       j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key,
       j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at, false AS changed
FROM jobkeeper.jobs j
WHERE j.id = %(id)s::uuid AND NOT EXISTS (SELECT FROM retried);

-- name: api_queue_stats
-- Counts of one queue's jobs by state (the caller's tenant only, under row-level security), its oldest
-- ready job's wait and its dead letters not yet replayed. No row: the queue does not exist for the caller.
SELECT q.name, q.tier, q.paused, s.waiting, s.scheduled, s.processing, s.completed, s.failed, s.cancelled,
       s.awaiting_dependencies, s.oldest_waiting_seconds,
       (SELECT count(*) FROM jobkeeper.dead_letter_jobs d
        WHERE d.queue = q.name AND d.replayed_at IS NULL
          AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)) AS dead_letters,
       now() AS measured_at
FROM jobkeeper.queues q
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE j.status = 'pending' AND j.scheduled_at <= now()) AS waiting,
           count(*) FILTER (WHERE j.status = 'pending' AND j.scheduled_at > now()) AS scheduled,
           count(*) FILTER (WHERE j.status = 'processing') AS processing,
           count(*) FILTER (WHERE j.status = 'completed') AS completed,
           count(*) FILTER (WHERE j.status = 'failed') AS failed,
           count(*) FILTER (WHERE j.status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE j.status = 'waiting') AS awaiting_dependencies,
           extract(epoch FROM now() - min(j.scheduled_at)
                   FILTER (WHERE j.status = 'pending' AND j.scheduled_at <= now()))::float8 AS oldest_waiting_seconds
    FROM jobkeeper.jobs j
    WHERE j.queue = q.name AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
) s
WHERE q.name = %(queue)s::text;

-- name: api_set_queue_paused
UPDATE jobkeeper.queues
SET paused = %(paused)s::boolean
WHERE name = %(queue)s::text
RETURNING name, tenant_id, tier, max_attempts, backoff, backoff_base_seconds, backoff_max_seconds,
          backoff_jitter, timeout_seconds, default_priority, paused;

-- name: api_clean_queue
-- Delete up to %(limit)s finished jobs of a queue in the given states that finished before the grace
-- period. A job whose idempotency key is still alive is kept until the key expires: deleting it would let
-- a duplicate of a payment through. Dead-letter rows are kept (they hold their own copy of the job). A
-- parent whose dependents still wait is kept; a deleted job's dependency edges go with it.
WITH doomed AS MATERIALIZED (
    SELECT j.id, j.tier, j.has_dependents
    FROM jobkeeper.jobs j
    WHERE j.queue = %(queue)s::text
      AND j.status = ANY(%(statuses)s::text[])
      AND j.completed_at < now() - make_interval(secs => %(grace_seconds)s::float8)
      AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
      AND NOT EXISTS (SELECT FROM jobkeeper.idempotency_keys k
                      WHERE k.job_id = j.id AND k.tenant_id = j.tenant_id AND k.expires_at > now())
      AND NOT (j.has_dependents AND EXISTS (
              SELECT FROM jobkeeper.job_dependencies d JOIN jobkeeper.jobs c ON c.id = d.job_id
              WHERE d.depends_on = j.id AND c.status = 'waiting'))
    ORDER BY j.completed_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
),
parent_edges AS (
    DELETE FROM jobkeeper.job_dependencies d
    USING doomed
    WHERE d.job_id = doomed.id
),
child_edges AS (
    DELETE FROM jobkeeper.job_dependencies d
    USING doomed
    WHERE doomed.has_dependents AND d.depends_on = doomed.id
)
DELETE FROM jobkeeper.jobs j
USING doomed
WHERE j.id = doomed.id AND j.tier = doomed.tier
RETURNING j.id;

-- name: api_insert_schedule
-- No row comes back when the tenant has %(max_schedules)s schedules already. Run after
-- `lock_tenant_schedules` in the same transaction, so two creates cannot both pass the count.
INSERT INTO jobkeeper.schedules (tenant_id, name, cron, timezone, queue, job_type, payload, priority, active,
                                 missed_policy, catch_up_window_seconds, overlap_policy, next_run_at)
SELECT %(tenant_id)s::uuid, %(name)s::text, %(cron)s::text, %(timezone)s::text, %(queue)s::text,
       %(job_type)s::text, %(payload)s::jsonb, %(priority)s::smallint, %(active)s::boolean,
       %(missed_policy)s::text, %(catch_up_window_seconds)s::float8, %(overlap_policy)s::text,
       %(next_run_at)s::timestamptz
WHERE (SELECT count(*) FROM jobkeeper.schedules WHERE tenant_id = %(tenant_id)s::uuid) < %(max_schedules)s::int
RETURNING id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
          catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
          created_at, updated_at;

-- name: api_list_schedules
-- By name, keyset-paged on (name, id).
SELECT id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
       catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
       created_at, updated_at
FROM jobkeeper.schedules s
WHERE (%(ids)s::uuid[] IS NULL OR s.id = ANY(%(ids)s::uuid[]))
  AND (%(tenant_id)s::uuid IS NULL OR s.tenant_id = %(tenant_id)s::uuid)
  AND (%(active)s::boolean IS NULL OR s.active = %(active)s::boolean)
  AND (%(queue)s::text IS NULL OR s.queue = %(queue)s::text)
  AND (%(job_type)s::text IS NULL OR s.job_type = %(job_type)s::text)
  AND (%(after_name)s::text IS NULL OR (s.name, s.id) > (%(after_name)s::text, %(after_id)s::uuid))
ORDER BY s.name, s.id
LIMIT %(limit)s;

-- name: api_lock_schedule
SELECT id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
       catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
       created_at, updated_at
FROM jobkeeper.schedules
WHERE id = %(id)s::uuid
FOR UPDATE;

-- name: api_update_schedule
-- Every column is written from the merged, validated schedule the API computed under the row lock.
UPDATE jobkeeper.schedules
SET name = %(name)s::text,
    cron = %(cron)s::text,
    timezone = %(timezone)s::text,
    queue = %(queue)s::text,
    job_type = %(job_type)s::text,
    payload = %(payload)s::jsonb,
    priority = %(priority)s::smallint,
    active = %(active)s::boolean,
    missed_policy = %(missed_policy)s::text,
    catch_up_window_seconds = %(catch_up_window_seconds)s::float8,
    overlap_policy = %(overlap_policy)s::text,
    next_run_at = %(next_run_at)s::timestamptz
WHERE id = %(id)s::uuid
RETURNING id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
          catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
          created_at, updated_at;

-- name: api_delete_schedule
DELETE FROM jobkeeper.schedules
WHERE id = %(id)s::uuid
RETURNING id;

-- name: api_list_alerts
-- Newest first, keyset-paged on (created_at, id). Platform alerts (no tenant) are visible to platform
-- admins only: row-level security hides them from tenants.
SELECT id, tenant_id, queue, rule, severity, message, details, deliveries, acknowledged_at,
       acknowledged_by, created_at
FROM jobkeeper.alert_history a
WHERE (%(ids)s::uuid[] IS NULL OR a.id = ANY(%(ids)s::uuid[]))
  AND (%(tenant_id)s::uuid IS NULL OR a.tenant_id = %(tenant_id)s::uuid)
  AND (%(acknowledged)s::boolean IS NULL OR (a.acknowledged_at IS NOT NULL) = %(acknowledged)s::boolean)
  AND (%(severity)s::text IS NULL OR a.severity = %(severity)s::text)
  AND (%(queue)s::text IS NULL OR a.queue = %(queue)s::text)
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s::text)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (a.created_at, a.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s;

-- name: api_acknowledge_alert
-- Acknowledging twice keeps the first acknowledgement.
UPDATE jobkeeper.alert_history
SET acknowledged_at = COALESCE(acknowledged_at, now()),
    acknowledged_by = COALESCE(acknowledged_by, %(by)s::text)
WHERE id = %(id)s::uuid
RETURNING id, tenant_id, queue, rule, severity, message, details, deliveries, acknowledged_at,
          acknowledged_by, created_at;

-- name: api_ping
SELECT 1 AS ok;

-- name: api_live_workers
SELECT count(*) AS live, max(heartbeat_at) AS last_heartbeat_at
FROM jobkeeper.workers
WHERE stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => %(max_age)s::float8);

-- name: api_metrics_depth
-- Unfinished jobs per queue and state (awaiting_dependencies: status waiting), the oldest ready job's
-- wait, and jobs back in pending after a failed attempt within the window: only unfinished rows are read
-- (status-leading index).
SELECT j.queue,
       count(*) FILTER (WHERE j.status = 'pending' AND j.scheduled_at <= now()) AS waiting,
       count(*) FILTER (WHERE j.status = 'pending' AND j.scheduled_at > now()) AS scheduled,
       count(*) FILTER (WHERE j.status = 'processing') AS processing,
       count(*) FILTER (WHERE j.status = 'waiting') AS awaiting_dependencies,
       count(*) FILTER (WHERE j.status = 'pending' AND j.attempts > 0
                        AND j.updated_at >= now() - make_interval(secs => %(window)s::float8)) AS retried,
       COALESCE(extract(epoch FROM now() - min(j.scheduled_at)
                        FILTER (WHERE j.status = 'pending' AND j.scheduled_at <= now())), 0)::float8
           AS oldest_waiting_seconds
FROM jobkeeper.jobs j
WHERE j.status IN ('pending', 'processing', 'waiting')
GROUP BY j.queue;

-- name: api_metrics_finished
-- Jobs finished within the window per queue, type and final state; completed jobs also by run-time bucket
-- (width_bucket: 0 below the first bound, i from bound i on). Served by jobs_finished_idx (completed_at).
SELECT j.queue, j.type, j.status,
       width_bucket(extract(epoch FROM j.completed_at - j.started_at)::float8, %(bounds)s::float8[]) AS bucket,
       count(*) AS jobs,
       COALESCE(sum(extract(epoch FROM j.completed_at - j.started_at)::float8), 0)::float8 AS seconds
FROM jobkeeper.jobs j
WHERE j.completed_at >= now() - make_interval(secs => %(window)s::float8)
GROUP BY j.queue, j.type, j.status, bucket;

-- name: api_metrics_dead_letters
SELECT d.queue,
       count(*) FILTER (WHERE d.replayed_at IS NULL) AS unreplayed,
       count(*) FILTER (WHERE d.failed_at >= now() - make_interval(secs => %(window)s::float8)) AS recent
FROM jobkeeper.dead_letter_jobs d
GROUP BY d.queue;

-- name: api_metrics_shared_names
-- The names an anonymous scrape may show (no JOBKEEPER_METRICS_TOKEN): shared queues (no tenant), the job
-- types registered on them, and shared limiters. Every other name is a tenant's own.
SELECT ARRAY(SELECT q.name FROM jobkeeper.queues q WHERE q.tenant_id IS NULL) AS queues,
       ARRAY(SELECT jt.name FROM jobkeeper.job_types jt JOIN jobkeeper.queues q ON q.name = jt.queue
             WHERE q.tenant_id IS NULL) AS job_types,
       ARRAY(SELECT l.name FROM jobkeeper.rate_limiters l WHERE l.tenant_id IS NULL) AS limiters;

-- name: api_metrics_limiters
-- Outbound rate limiters as the workers share them: tokens available now (refilled to the database
-- clock), calls in flight (jobs processing whose type names the limiter: the slots the gate counts), and
-- jobs put back so far for want of a token or slot.
SELECT l.name,
       least(l.burst::float8,
             l.tokens + greatest(extract(epoch FROM now() - l.refilled_at), 0) * l.rate_per_second)::float8 AS tokens,
       l.burst, l.rate_per_second, l.max_concurrency, l.limiter_group, l.waits,
       (SELECT count(*) FROM jobkeeper.jobs j JOIN jobkeeper.job_types jt ON jt.name = j.type
         WHERE j.status = 'processing' AND jt.limiter = l.name) AS in_flight
FROM jobkeeper.rate_limiters l
ORDER BY l.name;

-- name: api_update_limiter
UPDATE jobkeeper.rate_limiters
SET rate_per_second = COALESCE(%(rate_per_second)s::float8, rate_per_second),
    burst = COALESCE(%(burst)s::integer, burst),
    max_concurrency = CASE WHEN %(clear_max_concurrency)s::boolean THEN NULL
                           ELSE COALESCE(%(max_concurrency)s::integer, max_concurrency) END,
    tokens = least(tokens, COALESCE(%(burst)s::integer, burst)::float8)
WHERE name = %(name)s
RETURNING name;

-- name: api_queue_metrics_history
-- Snapshots of one queue for charts, oldest first. `tenant_id` NULL: the all-tenants rows (admins); the
-- API role sees only its own tenant's rows through row-level security.
SELECT captured_at, tenant_id, waiting, scheduled, running, completed, failed, dead, throughput_per_minute,
       oldest_waiting_seconds
FROM jobkeeper.queue_metrics
WHERE queue = %(queue)s
  AND tenant_id IS NOT DISTINCT FROM %(tenant_id)s::uuid
  AND captured_at >= %(since)s::timestamptz
ORDER BY captured_at DESC
LIMIT %(limit)s;

-- name: api_metrics_alerts
SELECT a.severity,
       count(*) FILTER (WHERE a.created_at >= now() - make_interval(secs => %(window)s::float8)) AS raised,
       COALESCE(sum(jsonb_array_length(a.deliveries))
                FILTER (WHERE a.created_at >= now() - make_interval(secs => %(window)s::float8)), 0) AS deliveries,
       count(*) FILTER (WHERE a.acknowledged_at IS NULL) AS unacknowledged
FROM jobkeeper.alert_history a
GROUP BY a.severity;
