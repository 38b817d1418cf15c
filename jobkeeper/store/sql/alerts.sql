-- Named queries of alerts: the alert checks (maintenance leader), their listing, acknowledgement and
-- pruning. Each prune deletes at most %(limit)s rows per statement; the caller repeats it.

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

-- name: list_alerts
-- Newest first, keyset-paged on (created_at, id). Platform alerts (no tenant) are visible to platform
-- admins only: row-level security hides them from tenants.
SELECT id, tenant_id, queue, rule, severity, message, details, deliveries, acknowledged_at,
       acknowledged_by, created_at
FROM jobkeeper.alert_history a
WHERE (%(ids)s::uuid[] IS NULL OR a.id = ANY(%(ids)s::uuid[]))
  AND (%(tenant_id)s::uuid IS NULL OR a.tenant_id = %(tenant_id)s::uuid)
  AND (%(acknowledged)s::boolean IS NULL OR (a.acknowledged_at IS NOT NULL) = %(acknowledged)s::boolean)
  AND (%(severity)s::text IS NULL OR a.severity = %(severity)s::text)
  AND (%(queue)s::text IS NULL OR a.queue = %(queue)s::text)
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s::text)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (a.created_at, a.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s;

-- name: acknowledge_alert
-- Acknowledging twice keeps the first acknowledgement.
UPDATE jobkeeper.alert_history
SET acknowledged_at = COALESCE(acknowledged_at, now()),
    acknowledged_by = COALESCE(acknowledged_by, %(by)s::text)
WHERE id = %(id)s::uuid
RETURNING id, tenant_id, queue, rule, severity, message, details, deliveries, acknowledged_at,
          acknowledged_by, created_at;

-- name: prune_alerts
DELETE FROM jobkeeper.alert_history
WHERE id IN (SELECT id FROM jobkeeper.alert_history
             WHERE acknowledged_at IS NOT NULL
               AND created_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(older_than)s)
             LIMIT %(limit)s);
