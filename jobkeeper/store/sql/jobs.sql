-- Named queries of jobs: enqueue, reads, lists, retry and cancel, and the pruning of finished jobs.
-- Time comes from the database: every time-sensitive query takes %(now)s, NULL meaning now(). Queries run
-- in the API's per-request transaction are scoped to its tenant by row-level security; their explicit
-- tenant filters are for platform admins and for the planner. Optional filters take NULL for "any". Each
-- prune deletes at most %(limit)s rows per statement; the caller repeats it, so no giant DELETE holds
-- locks or bloats WAL.

-- part: doomed_edges
-- The dependency edges of the jobs a prune deletes (CTE `doomed`: id, tier, has_dependents): as parent and
-- as child.
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

-- part: retry_side_effects
-- After a retry (CTE `retried`): its dead letter marked replayed as this job, the result stored on its
-- idempotency key cleared, idle workers woken.
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

-- part: retry_reset
-- A retried job: pending again with a fresh attempt budget; `retries` keeps how the run before it ended
-- (status, time, attempts, dead letter), which the reset overwrites.
SET retries = j.retries || jsonb_build_array(jsonb_build_object(
        'at', now(), 'ended', j.status, 'ended_at', j.completed_at, 'attempts', j.attempts,
        'dead_lettered', EXISTS (SELECT FROM jobkeeper.dead_letter_jobs d
                                 WHERE d.tenant_id = j.tenant_id AND d.job_id = j.id
                                   AND d.replayed_at IS NULL))),
    status = 'pending', attempts = 0, scheduled_at = now(), started_at = NULL, completed_at = NULL,
    cancel_requested = false, worker_id = NULL, heartbeat_at = NULL, result = NULL, progress = NULL

-- part: bulk_action_pick
-- A bulk action's filters on the jobs of its statuses (alias j), oldest first, at most %(limit)s, locked.
  AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
  AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
  AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
  AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
  AND (%(payload)s::jsonb IS NULL OR j.payload @> %(payload)s::jsonb)
ORDER BY j.created_at
LIMIT %(limit)s
FOR UPDATE OF j SKIP LOCKED

-- part: job_filter
-- The filters of the job list and of a bulk action's count (alias j).
(%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
AND (%(statuses)s::text[] IS NULL OR j.status = ANY(%(statuses)s::text[]))
AND (%(type)s::text IS NULL OR j.type = %(type)s::text)
AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
AND (%(queue)s::text IS NULL
     OR j.tier = (SELECT q.tier FROM jobkeeper.queues q WHERE q.name = %(queue)s::text))
AND (%(created_after)s::timestamptz IS NULL OR j.created_at >= %(created_after)s::timestamptz)
AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)


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

-- name: cancel_job
-- A pending or waiting job is cancelled at once. A running job gets cancel_requested and a NOTIFY on
-- `jobkeeper_cancel` (payload: its id) so that its worker stops it; the worker's heartbeat also reads the
-- flag, which covers a lost notification. A finished job is returned unchanged. has_dependents tells the
-- caller to run `settle_dependents` next (its waiting dependents are cancelled too).
WITH updated AS (
    UPDATE jobkeeper.jobs j
    SET status = CASE WHEN j.status IN ('pending', 'waiting') THEN 'cancelled' ELSE j.status END,
        completed_at = CASE WHEN j.status IN ('pending', 'waiting') THEN now() ELSE j.completed_at END,
        cancel_requested = true
    WHERE j.id = %(id)s AND j.status IN ('pending', 'waiting', 'processing')
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
              j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key,
              j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at, j.has_dependents
),
notified AS (
    SELECT pg_notify('jobkeeper_cancel', u.id::text) AS sent
    FROM updated u
    WHERE u.status = 'processing'
)
SELECT u.*
FROM updated u
WHERE (SELECT count(*) FROM notified) >= 0
UNION ALL
SELECT j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
       j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key,
       j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at, j.has_dependents
FROM jobkeeper.jobs j
WHERE j.id = %(id)s AND NOT EXISTS (SELECT FROM updated);

-- name: job_detail
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

-- name: diagnose_job
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

-- name: list_jobs
-- plan: per call
-- Newest first, keyset-paged on (created_at, id): a platform admin's list reads jobs_created_idx, a
-- tenant's jobs_tenant_created_idx, so page N costs what page 1 costs. A queue filter also names the
-- queue's tier, so only its partition is read (run-time pruning). The payload filter (JSON containment)
-- has no index (one would be written on every claim and completion): it looks at no more than the
-- %(scan_limit)s jobs past the cursor and stops at %(limit)s matches; when it finds fewer,
-- `list_jobs_edge` says where its window ended (docs/api.md, "List jobs").
SELECT w.id, w.tenant_id, w.queue, w.type, w.payload, w.status, w.tier, w.priority, w.attempts,
       w.max_attempts, w.last_error, w.errors, w.result, w.progress, w.idempotency_key, w.scheduled_at,
       w.started_at, w.completed_at, w.created_at, w.updated_at
FROM (
    SELECT j.*
    FROM jobkeeper.jobs j
    WHERE
    -- use: job_filter
    AND (%(before_created_at)s::timestamptz IS NULL
         OR (j.created_at, j.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
    ORDER BY j.created_at DESC, j.id DESC
    LIMIT CASE WHEN %(payload)s::jsonb IS NULL THEN %(limit)s::int ELSE %(scan_limit)s::int END
) w
WHERE %(payload)s::jsonb IS NULL OR w.payload @> %(payload)s::jsonb
ORDER BY w.created_at DESC, w.id DESC
LIMIT %(limit)s;

-- name: list_jobs_edge
-- plan: per call
-- The oldest job a payload filter's window (`list_jobs`) looked at, when the window was full: the next
-- page starts there. No row: the window reached the end of the list.
SELECT j.created_at, j.id
FROM jobkeeper.jobs j
WHERE
    -- use: job_filter
    AND (%(before_created_at)s::timestamptz IS NULL
         OR (j.created_at, j.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY j.created_at DESC, j.id DESC
OFFSET %(scan_limit)s::int - 1
LIMIT 1;

-- name: count_jobs_for_action
-- plan: per call
-- How many jobs a bulk action on this filter would touch (shown on its confirmation page), counted up to
-- %(cap)s + 1: one click acts on at most %(cap)s, so "more than that" is all the page needs to say.
SELECT count(*) AS total
FROM (
SELECT
FROM jobkeeper.jobs j
WHERE
  -- use: job_filter
  AND (%(payload)s::jsonb IS NULL OR j.payload @> %(payload)s::jsonb)
  AND j.status = ANY(%(actionable)s::text[])
LIMIT %(cap)s::int + 1
) counted;

-- name: retry_job
-- A failed or cancelled job goes back to pending with a fresh attempt budget; its error history is kept.
-- Its dead-letter row (if any) is marked replayed as this same job, a result stored on its idempotency key
-- is cleared, and idle workers are woken. `changed` is false when the job exists but was not retryable.
-- `retries` keeps how the run before ended (status, time, attempts, dead letter): the retry resets them.
WITH retried AS (
    UPDATE jobkeeper.jobs j
    -- use: retry_reset
    WHERE j.id = %(id)s::uuid AND j.status IN ('failed', 'cancelled')
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
              j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key,
              j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at
),
-- use: retry_side_effects
SELECT r.*, true AS changed
FROM retried r
LEFT JOIN notified ON true
UNION ALL
SELECT j.id, j.tenant_id, j.queue, j.type, j.payload, j.status, j.tier, j.priority, j.attempts,
       j.max_attempts, j.last_error, j.errors, j.result, j.progress, j.idempotency_key,
       j.scheduled_at, j.started_at, j.completed_at, j.created_at, j.updated_at, false AS changed
FROM jobkeeper.jobs j
WHERE j.id = %(id)s::uuid AND NOT EXISTS (SELECT FROM retried);

-- name: retry_jobs_matching
-- The failed and cancelled jobs a filter selects (at most %(limit)s, oldest first) go back to pending with
-- a fresh attempt budget, as `retry_job` does for one: dead letters marked replayed, idempotency
-- results cleared, workers woken.
WITH picked AS MATERIALIZED (
    SELECT j.id, j.tier
    FROM jobkeeper.jobs j
    WHERE j.status IN ('failed', 'cancelled')
    -- use: bulk_action_pick
),
retried AS (
    UPDATE jobkeeper.jobs j
    -- use: retry_reset
    FROM picked p
    WHERE j.id = p.id AND j.tier = p.tier
    RETURNING j.id, j.tenant_id, j.queue, j.idempotency_key
),
-- use: retry_side_effects
SELECT r.id
FROM retried r
LEFT JOIN notified ON true;

-- name: cancel_jobs_matching
-- The pending, waiting and running jobs a filter selects (at most %(limit)s): pending and waiting ones are
-- cancelled at once, running ones are asked to stop (cancel_requested and a NOTIFY to their worker), as
-- `cancel_job` does; the caller settles the dependents of those with has_dependents.
WITH picked AS MATERIALIZED (
    SELECT j.id, j.tier
    FROM jobkeeper.jobs j
    WHERE j.status IN ('pending', 'waiting', 'processing')
    -- use: bulk_action_pick
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

-- name: prune_finished_jobs
-- Completed and cancelled jobs older than the horizon, except those a live idempotency key still points
-- at (a duplicate enqueue must be able to return them). Failed jobs go only once their dead letter is
-- purged: dead letters are kept until someone purges them. A parent whose dependents still wait is kept
-- (the release reads its status); a pruned job's dependency edges go with it.
WITH doomed AS MATERIALIZED (
    SELECT j.id, j.tier, j.has_dependents
    FROM jobkeeper.jobs j
    WHERE j.status IN ('completed', 'cancelled', 'failed')
      AND j.completed_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(older_than)s)
      AND (j.status <> 'failed' OR NOT EXISTS (
              SELECT FROM jobkeeper.dead_letter_jobs d WHERE d.tenant_id = j.tenant_id AND d.job_id = j.id))
      AND (j.idempotency_key IS NULL OR NOT EXISTS (
              SELECT FROM jobkeeper.idempotency_keys k
              WHERE k.tenant_id = j.tenant_id AND k.key = j.idempotency_key AND k.job_id = j.id
                AND k.expires_at > COALESCE(%(now)s::timestamptz, now())))
      AND NOT (j.has_dependents AND EXISTS (
              SELECT FROM jobkeeper.job_dependencies d JOIN jobkeeper.jobs c ON c.id = d.job_id
              WHERE d.depends_on = j.id AND c.status = 'waiting'))
    LIMIT %(limit)s
),
-- use: doomed_edges
DELETE FROM jobkeeper.jobs j
USING doomed
WHERE j.id = doomed.id AND j.tier = doomed.tier;

-- name: prune_idempotency_keys
DELETE FROM jobkeeper.idempotency_keys
WHERE id IN (SELECT id FROM jobkeeper.idempotency_keys
             WHERE expires_at <= COALESCE(%(now)s::timestamptz, now())
             LIMIT %(limit)s);
