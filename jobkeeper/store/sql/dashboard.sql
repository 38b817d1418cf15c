-- Named queries of the dashboard (jobkeeper/dashboard). Each page runs them inside the API's per-request
-- transaction (jobkeeper.api.tenancy: `api_enter`, SET LOCAL ROLE and the tenant), so row-level security
-- scopes every statement to the signed-in tenant; the explicit tenant filters are for platform admins and
-- for the planner. Optional filters take NULL for "any".

-- name: dashboard_queues
-- Every queue the caller can see, with its jobs counted by state, the oldest ready job's wait and its dead
-- letters not yet replayed. Unfinished states are read through the status indexes; finished ones through
-- (queue, status).
SELECT q.name, q.tenant_id, q.tier, q.paused,
       s.waiting, s.scheduled, s.processing, s.completed, s.failed, s.cancelled, s.awaiting_dependencies,
       s.oldest_waiting_seconds,
       (SELECT count(*) FROM jobkeeper.dead_letter_jobs d
        WHERE d.queue = q.name AND d.replayed_at IS NULL
          AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)) AS dead_letters
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
ORDER BY q.name;

-- name: dashboard_queue_counts
-- planned per call: its optional filters need a plan made for their values.
-- The overview's counts: every queue the caller can see, with its jobs counted by state, the oldest ready job's wait and its dead
-- letters not yet replayed. Counts stop at a cap + 1 rows (the page shows "10,000+"): exact counts of a
-- million-row history cost a scan of it on every refresh, capped ones a few index pages. Unfinished states
-- (read through the partial pending/processing indexes) stop at %(cap)s, finished ones and dead letters,
-- which only grow, at %(finished_cap)s.
SELECT q.name, q.tenant_id, q.tier, q.paused,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'pending' AND j.scheduled_at <= now()
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(cap)s::int + 1) c) AS waiting,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'pending' AND j.scheduled_at > now()
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(cap)s::int + 1) c) AS scheduled,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'processing'
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(cap)s::int + 1) c) AS processing,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'waiting'
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(cap)s::int + 1) c) AS awaiting_dependencies,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'completed'
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(finished_cap)s::int + 1) c) AS completed,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'failed'
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(finished_cap)s::int + 1) c) AS failed,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.jobs j
                              WHERE j.queue = q.name AND j.status = 'cancelled'
                                AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(finished_cap)s::int + 1) c) AS cancelled,
       (SELECT extract(epoch FROM now() - min(j.scheduled_at))::float8
        FROM jobkeeper.jobs j
        WHERE j.queue = q.name AND j.status = 'pending' AND j.scheduled_at <= now()
          AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)) AS oldest_waiting_seconds,
       (SELECT count(*) FROM (SELECT FROM jobkeeper.dead_letter_jobs d
                              WHERE d.queue = q.name AND d.replayed_at IS NULL
                                AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)
                              LIMIT %(finished_cap)s::int + 1) c) AS dead_letters
FROM jobkeeper.queues q
ORDER BY q.name;

-- name: dashboard_queue_metrics
-- The snapshots of the last %(window)s seconds, oldest first: platform totals (tenant_id NULL) for platform
-- admins, the tenant's own rows otherwise (row-level security hides every other tenant's).
SELECT m.queue, m.captured_at, m.completed, m.failed, m.throughput_per_minute
FROM jobkeeper.queue_metrics m
WHERE m.captured_at >= now() - make_interval(secs => %(window)s::float8)
  AND m.tenant_id IS NOT DISTINCT FROM %(tenant_id)s::uuid
ORDER BY m.queue, m.captured_at;

-- name: dashboard_workers
-- Workers whose heartbeat is recent, with what they serve and how busy they are. For a tenant
-- (%(tenant_id)s not NULL) only the names it may know: shared queues and its own, and the job types
-- registered on those; another tenant's private queue or handler type never reaches it.
SELECT w.id, w.hostname, w.pid,
       CASE WHEN %(tenant_id)s::uuid IS NULL THEN w.queues ELSE ARRAY(
           SELECT name FROM unnest(w.queues) WITH ORDINALITY AS served(name, n)
           WHERE EXISTS (SELECT FROM jobkeeper.queues q
                         WHERE q.name = served.name
                           AND (q.tenant_id IS NULL OR q.tenant_id = %(tenant_id)s::uuid))
           ORDER BY n) END AS queues,
       CASE WHEN %(tenant_id)s::uuid IS NULL THEN w.job_types ELSE ARRAY(
           SELECT name FROM unnest(w.job_types) WITH ORDINALITY AS handled(name, n)
           WHERE EXISTS (SELECT FROM jobkeeper.job_types jt JOIN jobkeeper.queues q ON q.name = jt.queue
                         WHERE jt.name = handled.name
                           AND (q.tenant_id IS NULL OR q.tenant_id = %(tenant_id)s::uuid))
           ORDER BY n) END AS job_types,
       w.concurrency, w.running, w.started_at, w.heartbeat_at
FROM jobkeeper.workers w
WHERE w.stopped_at IS NULL AND w.heartbeat_at >= now() - make_interval(secs => %(max_age)s::float8)
ORDER BY w.hostname, w.pid, w.id;

-- name: dashboard_list_jobs
-- planned per call: its optional filters need a plan made for their values.
-- Newest first, keyset-paged on (created_at, id): a page costs the same at row one million as at row one
-- (the platform admin's list reads jobs_created_idx, a tenant's jobs_tenant_created_idx). A queue filter
-- also names the queue's tier, so only its partition is read (run-time pruning).
-- The payload filter (JSON containment, @>) has no index (one would be written on every claim and
-- completion): it looks at no more than the %(scan_limit)s jobs past the cursor, newest first, and stops
-- as soon as it has %(limit)s matches. When it finds fewer, `dashboard_scan_edge` says where its window
-- ended, and the next page goes on from there.
SELECT w.id, w.tenant_id, w.queue, w.type, w.status, w.priority, w.attempts, w.max_attempts, w.last_error,
       w.scheduled_at, w.started_at, w.completed_at, w.created_at
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
    LIMIT CASE WHEN %(filter)s::jsonb IS NULL THEN %(limit)s::int ELSE %(scan_limit)s::int END
) w
WHERE %(filter)s::jsonb IS NULL OR w.payload @> %(filter)s::jsonb
ORDER BY w.created_at DESC, w.id DESC
LIMIT %(limit)s;

-- name: dashboard_scan_edge
-- planned per call: its optional filters need a plan made for their values.
-- The oldest job a payload filter's window (`dashboard_list_jobs`) looked at, when the window was full:
-- older jobs may match too. No row: the window reached the end of the list.
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

-- name: dashboard_count_jobs
-- planned per call: its optional filters need a plan made for their values.
-- How many jobs a bulk action on this filter would touch (shown on its confirmation page), counted up to
-- %(cap)s + 1: one click acts on at most %(cap)s, so "more than that" is all the page needs to say.
SELECT count(*) AS total
FROM (
SELECT
FROM jobkeeper.jobs j
WHERE (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
  AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
  AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
  AND (%(queue)s::text IS NULL
       OR j.tier = (SELECT q.tier FROM jobkeeper.queues q WHERE q.name = %(queue)s::text))
  AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
  AND (%(filter)s::jsonb IS NULL OR j.payload @> %(filter)s::jsonb)
  AND j.status = ANY(%(actionable)s::text[])
LIMIT %(cap)s::int + 1
) counted;

-- name: dashboard_job
SELECT j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
       j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key, j.scheduled_at,
       j.started_at, j.completed_at, j.created_at, j.updated_at, j.cancel_requested, j.worker_id, j.retries,
       t.name AS tenant_name,
       d.id AS dead_letter_id, d.failed_at AS dead_lettered_at, d.replayed_at AS dead_letter_replayed_at,
       d.replayed_job_id AS dead_letter_replayed_job_id
FROM jobkeeper.jobs j
LEFT JOIN jobkeeper.tenants t ON t.id = j.tenant_id
LEFT JOIN jobkeeper.dead_letter_jobs d ON d.tenant_id = j.tenant_id AND d.job_id = j.id
WHERE j.id = %(id)s::uuid;

-- name: dashboard_bulk_retry
-- The failed and cancelled jobs a filter selects (at most %(limit)s, oldest first) go back to pending with
-- a fresh attempt budget, as `api_retry_job` does for one: dead letters marked replayed, idempotency
-- results cleared, workers woken.
WITH picked AS MATERIALIZED (
    SELECT j.id, j.tier
    FROM jobkeeper.jobs j
    WHERE j.status IN ('failed', 'cancelled')
      AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
      AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
      AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
      AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
      AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
      AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
      AND (%(filter)s::jsonb IS NULL OR j.payload @> %(filter)s::jsonb)
    ORDER BY j.created_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
),
retried AS (
    UPDATE jobkeeper.jobs j
    SET retries = j.retries || jsonb_build_array(jsonb_build_object(
            'at', now(), 'ended', j.status, 'ended_at', j.completed_at, 'attempts', j.attempts,
            'dead_lettered', EXISTS (SELECT FROM jobkeeper.dead_letter_jobs d
                                     WHERE d.tenant_id = j.tenant_id AND d.job_id = j.id
                                       AND d.replayed_at IS NULL))),
        status = 'pending', attempts = 0, scheduled_at = now(), started_at = NULL, completed_at = NULL,
        cancel_requested = false, worker_id = NULL, heartbeat_at = NULL, result = NULL, progress = NULL
    FROM picked p
    WHERE j.id = p.id AND j.tier = p.tier
    RETURNING j.id, j.tenant_id, j.queue, j.idempotency_key
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
SELECT r.id
FROM retried r
LEFT JOIN notified ON true;

-- name: dashboard_bulk_cancel
-- The pending, waiting and running jobs a filter selects (at most %(limit)s): pending and waiting ones are
-- cancelled at once, running ones are asked to stop (cancel_requested and a NOTIFY to their worker), as
-- `cancel_job` does; the caller settles the dependents of those with has_dependents.
WITH picked AS MATERIALIZED (
    SELECT j.id, j.tier
    FROM jobkeeper.jobs j
    WHERE j.status IN ('pending', 'waiting', 'processing')
      AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
      AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
      AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
      AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
      AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
      AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
      AND (%(filter)s::jsonb IS NULL OR j.payload @> %(filter)s::jsonb)
    ORDER BY j.created_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
),
updated AS (
    UPDATE jobkeeper.jobs j
    SET status = CASE WHEN j.status IN ('pending', 'waiting') THEN 'cancelled' ELSE j.status END,
        completed_at = CASE WHEN j.status IN ('pending', 'waiting') THEN now() ELSE j.completed_at END,
        cancel_requested = true
    FROM picked p
    WHERE j.id = p.id AND j.tier = p.tier
    RETURNING j.id, j.status, j.has_dependents
),
notified AS (
    SELECT pg_notify('jobkeeper_cancel', u.id::text) AS sent
    FROM updated u
    WHERE u.status = 'processing'
)
SELECT u.id, u.status, u.has_dependents
FROM updated u
WHERE (SELECT count(*) FROM notified) >= 0;

-- name: dashboard_diagnose_job
-- Everything that decides whether a pending job can be claimed now: its schedule, its queue's pause, its
-- type's outbound limiter (tokens refilled to now, calls in flight), its tenant's concurrency cap and
-- running jobs, the live workers that serve its queue and type, and how many ready jobs are ahead of it.
-- For a waiting job, the parents that have not completed (at most 100, the most a job may have).
SELECT j.id, j.status, j.queue, j.type, j.scheduled_at, j.priority, now() AS now,
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', d.depends_on, 'type', p.type,
                                                     'status', COALESCE(p.status, 'deleted'))
                                  ORDER BY d.depends_on), '[]'::jsonb)
        FROM jobkeeper.job_dependencies d
        LEFT JOIN jobkeeper.jobs p ON p.id = d.depends_on
        WHERE j.status = 'waiting' AND d.job_id = j.id AND p.status IS DISTINCT FROM 'completed')
           AS unfinished_parents,
       q.paused AS queue_paused,
       jt.limiter,
       l.rate_per_second AS limiter_rate, l.burst AS limiter_burst, l.max_concurrency AS limiter_max_concurrency,
       l.in_flight AS limiter_in_flight,
       least(l.burst::float8,
             l.tokens + greatest(extract(epoch FROM now() - l.refilled_at), 0) * l.rate_per_second)::float8
           AS limiter_tokens,
       t.max_concurrency AS tenant_max_concurrency,
       (SELECT count(*) FROM jobkeeper.jobs r
        WHERE r.tenant_id = j.tenant_id AND r.status = 'processing') AS tenant_running,
       (SELECT count(*) FROM jobkeeper.workers w
        WHERE w.stopped_at IS NULL AND w.heartbeat_at >= now() - make_interval(secs => %(max_age)s::float8)
          AND j.queue = ANY(w.queues)) AS workers_for_queue,
       (SELECT count(*) FROM jobkeeper.workers w
        WHERE w.stopped_at IS NULL AND w.heartbeat_at >= now() - make_interval(secs => %(max_age)s::float8)
          AND j.queue = ANY(w.queues) AND j.type = ANY(w.job_types)) AS workers_for_type,
       (SELECT count(*) FROM jobkeeper.jobs a
        WHERE a.queue = j.queue AND a.status = 'pending' AND a.scheduled_at <= now()
          AND (a.priority > j.priority OR (a.priority = j.priority AND a.scheduled_at < j.scheduled_at)))
           AS ahead
FROM jobkeeper.jobs j
JOIN jobkeeper.queues q ON q.name = j.queue
LEFT JOIN jobkeeper.job_types jt ON jt.name = j.type
LEFT JOIN jobkeeper.rate_limiters l ON l.name = jt.limiter
LEFT JOIN jobkeeper.tenants t ON t.id = j.tenant_id
WHERE j.id = %(id)s::uuid;

-- name: dashboard_job_dependencies
-- The job page's "Depends on" (parents) and "Dependents" (children) lists, with their states; at most 500.
SELECT 'parent' AS relation, p.id, p.type, p.queue, p.status, p.completed_at
FROM jobkeeper.job_dependencies d
JOIN jobkeeper.jobs p ON p.id = d.depends_on
WHERE d.job_id = %(id)s::uuid
UNION ALL
SELECT 'child', c.id, c.type, c.queue, c.status, c.completed_at
FROM jobkeeper.job_dependencies d
JOIN jobkeeper.jobs c ON c.id = d.job_id
WHERE d.depends_on = %(id)s::uuid
ORDER BY 1 DESC, 2
LIMIT 500;

-- name: dashboard_count_dead_letters
SELECT count(*) AS total
FROM jobkeeper.dead_letter_jobs d
WHERE (%(ids)s::uuid[] IS NULL OR d.id = ANY(%(ids)s::uuid[]))
  AND (%(queue)s::text IS NULL OR d.queue = %(queue)s::text)
  AND (%(type)s::text IS NULL OR d.type = %(type)s::text)
  AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)
  AND (%(since)s::timestamptz IS NULL OR d.failed_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR d.failed_at < %(until)s::timestamptz)
  AND (%(replayed)s::boolean IS NULL OR (d.replayed_at IS NOT NULL) = %(replayed)s::boolean);

-- name: dashboard_pause_schedule
UPDATE jobkeeper.schedules
SET active = false, next_run_at = NULL
WHERE id = %(id)s::uuid
RETURNING id, name;

-- name: dashboard_resume_schedule
UPDATE jobkeeper.schedules
SET active = true, next_run_at = %(next_run_at)s::timestamptz
WHERE id = %(id)s::uuid
RETURNING id, name;

-- name: dashboard_record_schedule_run
-- "Run now" enqueued %(job_id)s for this schedule; its regular slots are unchanged.
UPDATE jobkeeper.schedules
SET last_run_at = now(), last_job_id = %(job_id)s::uuid
WHERE id = %(id)s::uuid
RETURNING id;

-- name: dashboard_limiters
-- Outbound rate limiters visible to the caller: tokens refilled to now, calls in flight, and the pending
-- jobs of their types that are waiting for a token (put back with a later scheduled_at).
SELECT l.name, l.tenant_id, l.rate_per_second, l.burst, l.max_concurrency, l.limiter_group, l.in_flight,
       least(l.burst::float8,
             l.tokens + greatest(extract(epoch FROM now() - l.refilled_at), 0) * l.rate_per_second)::float8 AS tokens,
       (SELECT count(*) FROM jobkeeper.jobs j
        JOIN jobkeeper.job_types jt ON jt.name = j.type
        WHERE jt.limiter = l.name AND j.status = 'pending' AND j.scheduled_at > now()
          AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)) AS waiting,
       (SELECT array_agg(jt.name ORDER BY jt.name)
        FROM jobkeeper.job_types jt JOIN jobkeeper.queues q ON q.name = jt.queue
        WHERE jt.limiter = l.name
          -- a tenant sees the types of shared queues and of its own, never another tenant's
          AND (%(tenant_id)s::uuid IS NULL OR q.tenant_id IS NULL OR q.tenant_id = %(tenant_id)s::uuid))
           AS job_types
FROM jobkeeper.rate_limiters l
ORDER BY l.name;

-- name: dashboard_tenants
-- Tenants for the platform admin's tenant filter (a tenant's own role reads its own row only).
SELECT id, name, slug, active
FROM jobkeeper.tenants
ORDER BY name
LIMIT 500;
