-- Named queries of rate limiting: the outbound limiters (DESIGN §7; token buckets are rows shared by
-- every worker) and the API's request buckets.

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

-- name: list_limiters
-- alias: api_metrics_limiters
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

-- name: update_limiter
UPDATE jobkeeper.rate_limiters
SET rate_per_second = COALESCE(%(rate_per_second)s::float8, rate_per_second),
    burst = COALESCE(%(burst)s::integer, burst),
    max_concurrency = CASE WHEN %(clear_max_concurrency)s::boolean THEN NULL
                           ELSE COALESCE(%(max_concurrency)s::integer, max_concurrency) END,
    tokens = least(tokens, COALESCE(%(burst)s::integer, burst)::float8)
WHERE name = %(name)s
RETURNING name;

-- name: take_tokens
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

-- name: give_back_tokens
-- A granted take whose request then failed: its tokens go back (never above the capacity).
UPDATE jobkeeper.rate_limits
SET tokens = least(capacity, tokens + %(cost)s::float8)
WHERE tenant_id = %(tenant_id)s::uuid AND key = %(key)s::text
RETURNING tokens;

-- name: list_limiters_waiting
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
