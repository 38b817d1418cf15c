-- Named queries of queues and job types (the catalog), queue statistics, pause and clean. Optional
-- filters take NULL for "any".

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

-- name: register_job_types
-- The options of `@task` become the job type's defaults at enqueue. An option the task leaves unset keeps
-- the row's value; a new type without a queue goes to the default queue. Unchanged rows are not touched.
INSERT INTO jobkeeper.job_types AS t (name, queue, max_attempts, timeout_seconds, priority)
SELECT i.name,
       COALESCE(i.queue, existing.queue, %(default_queue)s::text),
       COALESCE(i.max_attempts, existing.max_attempts),
       COALESCE(i.timeout_seconds, existing.timeout_seconds),
       COALESCE(i.priority, existing.priority)
FROM unnest(%(names)s::text[], %(queues)s::text[], %(max_attempts)s::integer[],
            %(timeouts)s::float8[], %(priorities)s::smallint[])
     AS i(name, queue, max_attempts, timeout_seconds, priority)
LEFT JOIN jobkeeper.job_types existing ON existing.name = i.name
ON CONFLICT (name) DO UPDATE
SET queue = excluded.queue,
    max_attempts = excluded.max_attempts,
    timeout_seconds = excluded.timeout_seconds,
    priority = excluded.priority
WHERE (t.queue, t.max_attempts, t.timeout_seconds, t.priority)
      IS DISTINCT FROM (excluded.queue, excluded.max_attempts, excluded.timeout_seconds, excluded.priority);

-- name: queue_stats
-- Every queue the caller can see (or only %(queue)s), with its jobs counted by state (the caller's tenant
-- only, under row-level security; %(tenant_id)s narrows a platform admin's view to one tenant), the
-- oldest ready job's wait, its dead letters not yet replayed, and the database time of the count.
-- Unfinished states are read through the status indexes; finished ones through (queue, status).
SELECT q.name, q.tenant_id, q.tier, q.paused,
       s.waiting, s.scheduled, s.processing, s.completed, s.failed, s.cancelled, s.awaiting_dependencies,
       s.oldest_waiting_seconds,
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
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
ORDER BY q.name;

-- name: set_queue_paused
UPDATE jobkeeper.queues
SET paused = %(paused)s::boolean
WHERE name = %(queue)s::text
RETURNING name, tenant_id, tier, max_attempts, backoff, backoff_base_seconds, backoff_max_seconds,
          backoff_jitter, timeout_seconds, default_priority, paused;

-- name: clean_queue
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
-- use: doomed_edges
DELETE FROM jobkeeper.jobs j
USING doomed
WHERE j.id = doomed.id AND j.tier = doomed.tier
RETURNING j.id;

-- name: queue_counts
-- plan: per call
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
