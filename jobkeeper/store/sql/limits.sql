-- Named queries of the outbound rate limiters (DESIGN §7). Token buckets are rows shared by every worker.

-- name: lock_limiters
-- The limiters a batch needs (and the groups they share a budget with), locked for this transaction so
-- that concurrent workers take tokens one after the other. Also the database clock: clock_timestamp(),
-- not now(), which is when the transaction began, possibly before another worker's refill it waited for.
SELECT l.name, l.rate_per_second, l.burst, l.max_concurrency, l.tokens, l.refilled_at, l.limiter_group,
       COALESCE(%(now)s::timestamptz, clock_timestamp()) AS now
FROM jobkeeper.rate_limiters l
WHERE l.name = ANY(%(names)s::text[])
   OR l.name IN (SELECT limiter_group FROM jobkeeper.rate_limiters WHERE name = ANY(%(names)s::text[]))
ORDER BY l.name
FOR UPDATE;

-- name: limiter_in_flight
-- Concurrency slots in use: jobs now processing whose type names the limiter. A slot is free again as
-- soon as its job is no longer processing, however it ended (a worker's death included).
SELECT jt.limiter AS name, count(*) AS in_flight
FROM jobkeeper.jobs j
JOIN jobkeeper.job_types jt ON jt.name = j.type
WHERE j.status = 'processing' AND jt.limiter IS NOT NULL
GROUP BY jt.limiter;

-- name: store_limiter_tokens
UPDATE jobkeeper.rate_limiters l
SET tokens = u.tokens, refilled_at = u.refilled_at, waits = l.waits + u.waits
FROM unnest(%(names)s::text[], %(tokens)s::float8[], %(refilled_ats)s::timestamptz[], %(waits)s::bigint[])
     AS u(name, tokens, refilled_at, waits)
WHERE l.name = u.name;

-- name: defer_jobs
-- Jobs that got no token go back to pending at the time their token is due, with no attempt spent.
UPDATE jobkeeper.jobs j
SET status = 'pending', attempts = j.attempts - 1, scheduled_at = u.run_at, worker_id = NULL,
    heartbeat_at = NULL, started_at = NULL
FROM unnest(%(ids)s::uuid[], %(run_ats)s::timestamptz[]) AS u(id, run_at)
WHERE j.id = u.id AND j.status = 'processing' AND j.worker_id = %(worker_id)s;
