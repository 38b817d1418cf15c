-- Named queries of retention and metric snapshots (maintenance leader). Each prune deletes at most
-- %(limit)s rows per statement; the caller repeats it, so no giant DELETE holds locks or bloats WAL.

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
WHERE j.id = doomed.id AND j.tier = doomed.tier;

-- name: prune_idempotency_keys
DELETE FROM jobkeeper.idempotency_keys
WHERE id IN (SELECT id FROM jobkeeper.idempotency_keys
             WHERE expires_at <= COALESCE(%(now)s::timestamptz, now())
             LIMIT %(limit)s);

-- name: prune_queue_metrics
DELETE FROM jobkeeper.queue_metrics
WHERE id IN (SELECT id FROM jobkeeper.queue_metrics
             WHERE captured_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(older_than)s)
             LIMIT %(limit)s);

-- name: prune_alerts
DELETE FROM jobkeeper.alert_history
WHERE id IN (SELECT id FROM jobkeeper.alert_history
             WHERE acknowledged_at IS NOT NULL
               AND created_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(older_than)s)
             LIMIT %(limit)s);

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
