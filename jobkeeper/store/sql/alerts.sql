-- Named queries of the alert checks (maintenance leader).

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

-- name: new_dead_letters
-- Dead letters of durable (money) queues since the given instant, per queue.
SELECT d.queue, count(*) AS dead, max(d.failed_at) AS latest,
       (array_agg(d.job_id ORDER BY d.failed_at DESC))[1:10] AS job_ids
FROM jobkeeper.dead_letter_jobs d
JOIN jobkeeper.queues q ON q.name = d.queue
WHERE q.tier = 'durable' AND d.failed_at > %(since)s::timestamptz
GROUP BY d.queue;

-- name: dead_letter_watermark
-- The newest failure time the previous dead-letter alert covered: newer dead letters are new.
SELECT (details->>'latest')::timestamptz AS latest
FROM jobkeeper.alert_history
WHERE rule = 'money_dead_letter'
ORDER BY created_at DESC
LIMIT 1;

-- name: insert_alerts
-- New alerts, each only when no alert of the same rule and queue was raised within its cooldown.
-- The advisory lock serialises two leaders overlapping for a moment.
WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext('jobkeeper.alerts')) AS held),
candidates AS (
    SELECT c.*
    FROM unnest(%(rules)s::text[], %(queues)s::text[], %(severities)s::text[], %(messages)s::text[],
                %(details)s::jsonb[], %(cooldowns)s::float8[])
         AS c(rule, queue, severity, message, details, cooldown)
    CROSS JOIN lock
)
INSERT INTO jobkeeper.alert_history (rule, queue, severity, message, details, created_at)
SELECT c.rule, c.queue, c.severity, c.message, c.details, COALESCE(%(now)s::timestamptz, now())
FROM candidates c
WHERE NOT EXISTS (
    SELECT FROM jobkeeper.alert_history a
    WHERE a.rule = c.rule AND a.queue IS NOT DISTINCT FROM c.queue
      AND a.created_at > COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => c.cooldown))
RETURNING id, rule, queue, severity, message, details, created_at;

-- name: record_delivery
UPDATE jobkeeper.alert_history
SET deliveries = deliveries || jsonb_build_array(jsonb_build_object(
        'channel', %(channel)s::text, 'at', now(), 'ok', %(ok)s::boolean, 'error', %(error)s::text))
WHERE id = %(id)s;

-- name: get_alert
SELECT id, rule, queue, severity, message, details, created_at FROM jobkeeper.alert_history WHERE id = %(id)s;

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
