-- Named queries of the `generate-report` job type: queue activity over a period [%(from)s, %(to)s).
-- Every query takes the same filters: %(tenant_id)s (NULL: every tenant) and %(queues)s (NULL: every
-- queue). A job belongs to the period when it finished in it (completed_at); its latencies are those of
-- its last attempt: queue wait from enqueue (created_at) to start, and run time from start to finish.

-- name: report_throughput
-- Jobs finished per queue and per period bucket (%(bucket)s: 'hour' or 'day', in UTC), by final status.
SELECT j.queue,
       date_trunc(%(bucket)s::text, j.completed_at, 'UTC') AS bucket_start,
       count(*) FILTER (WHERE j.status = 'completed') AS completed,
       count(*) FILTER (WHERE j.status = 'failed') AS failed,
       count(*) FILTER (WHERE j.status = 'cancelled') AS cancelled
FROM jobkeeper.jobs j
WHERE j.completed_at >= %(from)s::timestamptz AND j.completed_at < %(to)s::timestamptz
  AND j.status IN ('completed', 'failed', 'cancelled')
  AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(queues)s::text[] IS NULL OR j.queue = ANY(%(queues)s::text[]))
GROUP BY j.queue, bucket_start
ORDER BY j.queue, bucket_start;

-- name: report_enqueued
-- Jobs enqueued per queue in the period, and how many of them are still waiting or running.
SELECT j.queue,
       count(*) AS enqueued,
       count(*) FILTER (WHERE j.status IN ('pending', 'processing')) AS unfinished
FROM jobkeeper.jobs j
WHERE j.created_at >= %(from)s::timestamptz AND j.created_at < %(to)s::timestamptz
  AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(queues)s::text[] IS NULL OR j.queue = ANY(%(queues)s::text[]))
GROUP BY j.queue
ORDER BY j.queue;

-- name: report_failures
-- Failed attempts recorded in the period, by job type and error type (the `type` of each entry of a job's
-- error history), with how many jobs they hit and how many of those ended failed.
SELECT j.queue,
       j.type AS job_type,
       COALESCE(e.entry ->> 'type', 'unknown') AS error_type,
       count(*) AS attempts,
       count(DISTINCT j.id) AS jobs,
       count(DISTINCT j.id) FILTER (WHERE j.status = 'failed') AS jobs_failed
FROM jobkeeper.jobs j
CROSS JOIN LATERAL jsonb_array_elements(j.errors) AS e(entry)
WHERE j.updated_at >= %(from)s::timestamptz  -- an error recorded in the period updated its row then
  AND jsonb_typeof(e.entry -> 'at') = 'string'
  AND (e.entry ->> 'at')::timestamptz >= %(from)s::timestamptz
  AND (e.entry ->> 'at')::timestamptz < %(to)s::timestamptz
  AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(queues)s::text[] IS NULL OR j.queue = ANY(%(queues)s::text[]))
GROUP BY j.queue, j.type, error_type
ORDER BY attempts DESC, j.queue, j.type, error_type;

-- name: report_dead_letters
-- Jobs dead-lettered in the period, by queue and job type, and how many were replayed since.
SELECT d.queue,
       d.type AS job_type,
       count(*) AS dead,
       count(*) FILTER (WHERE d.replayed_at IS NOT NULL) AS replayed
FROM jobkeeper.dead_letter_jobs d
WHERE d.failed_at >= %(from)s::timestamptz AND d.failed_at < %(to)s::timestamptz
  AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)
  AND (%(queues)s::text[] IS NULL OR d.queue = ANY(%(queues)s::text[]))
GROUP BY d.queue, d.type
ORDER BY dead DESC, d.queue, d.type;

-- name: report_recent_dead_letters
-- The latest dead letters of the period, for a look at what failed.
SELECT d.job_id, d.queue, d.type AS job_type, d.failed_at, d.attempts, left(d.last_error, 300) AS last_error
FROM jobkeeper.dead_letter_jobs d
WHERE d.failed_at >= %(from)s::timestamptz AND d.failed_at < %(to)s::timestamptz
  AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)
  AND (%(queues)s::text[] IS NULL OR d.queue = ANY(%(queues)s::text[]))
ORDER BY d.failed_at DESC
LIMIT %(limit)s;

-- name: report_latency
-- Percentiles (continuous: interpolated) of the queue wait and the run time of the jobs completed in the
-- period, per queue and over all queues (the row whose queue is NULL).
SELECT j.queue,
       count(*) AS jobs,
       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (
           ORDER BY extract(epoch FROM j.started_at - j.created_at)::float8) AS wait_seconds,
       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (
           ORDER BY extract(epoch FROM j.completed_at - j.started_at)::float8) AS run_seconds,
       max(extract(epoch FROM j.started_at - j.created_at))::float8 AS max_wait_seconds,
       max(extract(epoch FROM j.completed_at - j.started_at))::float8 AS max_run_seconds
FROM jobkeeper.jobs j
WHERE j.status = 'completed' AND j.started_at IS NOT NULL
  AND j.completed_at >= %(from)s::timestamptz AND j.completed_at < %(to)s::timestamptz
  AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(queues)s::text[] IS NULL OR j.queue = ANY(%(queues)s::text[]))
GROUP BY GROUPING SETS ((j.queue), ())
HAVING count(*) > 0  -- the grand total of no rows is a row too
ORDER BY j.queue NULLS LAST;
