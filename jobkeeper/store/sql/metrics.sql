-- Named queries of metrics: the Prometheus scrape, queue metric snapshots and their history, and the
-- inputs of the alert checks. Each prune deletes at most %(limit)s rows per statement; the caller repeats it.

-- name: metrics_shared_names
-- alias: api_metrics_shared_names
-- The names an anonymous scrape may show (no JOBKEEPER_METRICS_TOKEN): shared queues (no tenant), the job
-- types registered on them, and shared limiters. Every other name is a tenant's own.
SELECT ARRAY(SELECT q.name FROM jobkeeper.queues q WHERE q.tenant_id IS NULL) AS queues,
       ARRAY(SELECT jt.name FROM jobkeeper.job_types jt JOIN jobkeeper.queues q ON q.name = jt.queue
             WHERE q.tenant_id IS NULL) AS job_types,
       ARRAY(SELECT l.name FROM jobkeeper.rate_limiters l WHERE l.tenant_id IS NULL) AS limiters;

-- name: metrics_depth
-- alias: api_metrics_depth
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

-- name: metrics_finished
-- alias: api_metrics_finished
-- Jobs finished within the window per queue, type and final state; completed jobs also by run-time bucket
-- (width_bucket: 0 below the first bound, i from bound i on). Served by jobs_finished_idx (completed_at).
SELECT j.queue, j.type, j.status,
       width_bucket(extract(epoch FROM j.completed_at - j.started_at)::float8, %(bounds)s::float8[]) AS bucket,
       count(*) AS jobs,
       COALESCE(sum(extract(epoch FROM j.completed_at - j.started_at)::float8), 0)::float8 AS seconds
FROM jobkeeper.jobs j
WHERE j.completed_at >= now() - make_interval(secs => %(window)s::float8)
GROUP BY j.queue, j.type, j.status, bucket;

-- name: metrics_dead_letters
-- alias: api_metrics_dead_letters
SELECT d.queue,
       count(*) FILTER (WHERE d.replayed_at IS NULL) AS unreplayed,
       count(*) FILTER (WHERE d.failed_at >= now() - make_interval(secs => %(window)s::float8)) AS recent
FROM jobkeeper.dead_letter_jobs d
GROUP BY d.queue;

-- name: metrics_alerts
-- alias: api_metrics_alerts
SELECT a.severity,
       count(*) FILTER (WHERE a.created_at >= now() - make_interval(secs => %(window)s::float8)) AS raised,
       COALESCE(sum(jsonb_array_length(a.deliveries))
                FILTER (WHERE a.created_at >= now() - make_interval(secs => %(window)s::float8)), 0) AS deliveries,
       count(*) FILTER (WHERE a.acknowledged_at IS NULL) AS unacknowledged
FROM jobkeeper.alert_history a
GROUP BY a.severity;

-- name: queue_metrics_history
-- alias: api_queue_metrics_history
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

-- name: queue_metrics_recent
-- alias: dashboard_queue_metrics
-- The snapshots of the last %(window)s seconds, oldest first: platform totals (tenant_id NULL) for platform
-- admins, the tenant's own rows otherwise (row-level security hides every other tenant's).
SELECT m.queue, m.captured_at, m.completed, m.failed, m.throughput_per_minute
FROM jobkeeper.queue_metrics m
WHERE m.captured_at >= now() - make_interval(secs => %(window)s::float8)
  AND m.tenant_id IS NOT DISTINCT FROM %(tenant_id)s::uuid
ORDER BY m.queue, m.captured_at;

-- name: snapshot_queue_metrics
-- One row per queue (tenant_id NULL: all tenants) and one per queue and tenant with activity. Finished
-- counts cover the window since the previous snapshot (%(window)s seconds).
WITH clock AS MATERIALIZED (SELECT COALESCE(%(now)s::timestamptz, now()) AS now),
counts AS (
    SELECT j.queue, j.tenant_id,
           count(*) FILTER (WHERE j.status = 'pending' AND j.scheduled_at <= clock.now) AS waiting,
           count(*) FILTER (WHERE j.status = 'pending' AND j.scheduled_at > clock.now) AS scheduled,
           count(*) FILTER (WHERE j.status = 'processing') AS running,
           count(*) FILTER (WHERE j.status = 'completed'
                            AND j.completed_at > clock.now - make_interval(secs => %(window)s)) AS completed,
           count(*) FILTER (WHERE j.status = 'failed'
                            AND j.completed_at > clock.now - make_interval(secs => %(window)s)) AS failed,
           min(j.scheduled_at) FILTER (WHERE j.status = 'pending' AND j.scheduled_at <= clock.now) AS oldest
    FROM jobkeeper.jobs j, clock
    WHERE j.status IN ('pending', 'processing')
       OR j.completed_at > clock.now - make_interval(secs => %(window)s)
    GROUP BY GROUPING SETS ((j.queue), (j.queue, j.tenant_id))
),
dead AS (
    SELECT d.queue, d.tenant_id, count(*) AS dead
    FROM jobkeeper.dead_letter_jobs d
    WHERE d.replayed_at IS NULL
    GROUP BY GROUPING SETS ((d.queue), (d.queue, d.tenant_id))
),
per_queue AS (
    SELECT q.name AS queue, NULL::uuid AS tenant_id FROM jobkeeper.queues q
    UNION
    SELECT queue, tenant_id FROM counts WHERE tenant_id IS NOT NULL
    UNION
    SELECT queue, tenant_id FROM dead WHERE tenant_id IS NOT NULL
)
INSERT INTO jobkeeper.queue_metrics (queue, tenant_id, captured_at, waiting, scheduled, running, completed,
                                     failed, dead, throughput_per_minute, oldest_waiting_seconds)
SELECT p.queue, p.tenant_id, clock.now,
       COALESCE(c.waiting, 0), COALESCE(c.scheduled, 0), COALESCE(c.running, 0),
       COALESCE(c.completed, 0), COALESCE(c.failed, 0), COALESCE(d.dead, 0),
       COALESCE(c.completed, 0) * 60.0 / %(window)s,
       extract(epoch FROM clock.now - c.oldest)
FROM per_queue p
CROSS JOIN clock
LEFT JOIN counts c ON c.queue = p.queue AND c.tenant_id IS NOT DISTINCT FROM p.tenant_id
LEFT JOIN dead d ON d.queue = p.queue AND d.tenant_id IS NOT DISTINCT FROM p.tenant_id
RETURNING queue, tenant_id, waiting, running, completed, failed, dead;

-- name: prune_queue_metrics
DELETE FROM jobkeeper.queue_metrics
WHERE id IN (SELECT id FROM jobkeeper.queue_metrics
             WHERE captured_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(older_than)s)
             LIMIT %(limit)s);

-- name: alert_queue_stats
-- Everything the rules need, per queue, in one statement. Failure rate over %(rate_window)s seconds;
-- live workers are those with a recent heartbeat that serve the queue (an empty queue list serves all).
WITH clock AS MATERIALIZED (SELECT COALESCE(%(now)s::timestamptz, now()) AS now)
SELECT q.name AS queue, q.tier, q.paused,
       (SELECT count(*) FROM jobkeeper.jobs j
         WHERE j.queue = q.name AND j.status = 'pending' AND j.scheduled_at <= clock.now) AS depth,
       (SELECT extract(epoch FROM clock.now - min(j.scheduled_at)) FROM jobkeeper.jobs j
         WHERE j.queue = q.name AND j.status = 'pending' AND j.scheduled_at <= clock.now) AS oldest_seconds,
       (SELECT count(*) FROM jobkeeper.jobs j
         WHERE j.queue = q.name AND j.status = 'completed'
           AND j.completed_at > clock.now - make_interval(secs => %(rate_window)s)) AS completed,
       (SELECT count(*) FROM jobkeeper.jobs j
         WHERE j.queue = q.name AND j.status = 'failed'
           AND j.completed_at > clock.now - make_interval(secs => %(rate_window)s)) AS failed,
       (SELECT count(*) FROM jobkeeper.workers w
         WHERE w.stopped_at IS NULL
           AND w.heartbeat_at > clock.now - make_interval(secs => %(worker_lease)s)
           AND (cardinality(w.queues) = 0 OR q.name = ANY(w.queues))) AS live_workers
FROM jobkeeper.queues q, clock
ORDER BY q.name;

-- name: unhandled_job_types
-- Ready jobs whose type no live worker has a handler for (claims skip them: they would wait forever).
-- Only counted while some worker is alive: with none at all, the no_workers rule speaks.
WITH clock AS MATERIALIZED (SELECT COALESCE(%(now)s::timestamptz, now()) AS now),
live AS (
    SELECT w.queues, w.job_types
    FROM jobkeeper.workers w, clock
    WHERE w.stopped_at IS NULL AND w.heartbeat_at > clock.now - make_interval(secs => %(worker_lease)s)
)
SELECT j.queue, j.type, count(*) AS waiting
FROM jobkeeper.jobs j, clock
WHERE j.status = 'pending' AND j.scheduled_at <= clock.now
  AND EXISTS (SELECT FROM live)
  AND NOT EXISTS (SELECT FROM live
                  WHERE j.type = ANY(live.job_types)
                    AND (cardinality(live.queues) = 0 OR j.queue = ANY(live.queues)))
GROUP BY j.queue, j.type
ORDER BY j.queue, j.type;
