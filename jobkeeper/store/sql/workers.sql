-- Named queries of workers: registration, heartbeats, LISTEN, lost workers and the live-worker views.

-- name: register_worker
INSERT INTO jobkeeper.workers (id, hostname, pid, queues, job_types, concurrency)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(queues)s::text[], %(job_types)s::text[], %(concurrency)s)
RETURNING id, started_at;

-- name: stop_worker
UPDATE jobkeeper.workers
SET stopped_at = now(), running = 0, heartbeat_at = now()
WHERE id = %(id)s;

-- name: heartbeat
-- One statement refreshes the worker row and every job it runs, and reads back cancellation requests.
-- A job missing from the result is no longer this worker's (rescued, or finished meanwhile).
WITH clock AS MATERIALIZED (
    SELECT now() AS now, set_config('synchronous_commit', 'off', true) AS synchronous_commit
),
worker AS (
    UPDATE jobkeeper.workers w
    SET heartbeat_at = clock.now, running = %(running)s
    FROM clock
    WHERE w.id = %(worker_id)s
),
beat AS (
    UPDATE jobkeeper.jobs j
    SET heartbeat_at = clock.now
    FROM unnest(%(ids)s::uuid[], %(tiers)s::text[]) AS r(id, tier), clock
    WHERE j.id = r.id AND j.tier = r.tier
      AND j.status = 'processing' AND j.worker_id = %(worker_id)s
    RETURNING j.id, j.cancel_requested
)
SELECT id, cancel_requested
FROM beat;

-- name: listen_channels
LISTEN jobkeeper_jobs;
LISTEN jobkeeper_cancel;

-- name: mark_lost_workers
UPDATE jobkeeper.workers
SET stopped_at = COALESCE(%(now)s::timestamptz, now())
WHERE stopped_at IS NULL
  AND heartbeat_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(lease_seconds)s)
RETURNING id;

-- name: count_live_workers
-- alias: api_live_workers
SELECT count(*) AS live, max(heartbeat_at) AS last_heartbeat_at
FROM jobkeeper.workers
WHERE stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => %(max_age)s::float8);

-- name: list_live_workers
-- alias: dashboard_workers
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
