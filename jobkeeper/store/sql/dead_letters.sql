-- Named queries for the dead-letter table. Filters are optional: a NULL parameter matches everything.

-- part: dead_letter_filter
-- The filters of the list, replay, purge and count after `ids` (alias d).
AND (%(queue)s::text IS NULL OR d.queue = %(queue)s::text)
AND (%(type)s::text IS NULL OR d.type = %(type)s::text)
AND (%(tenant_id)s::uuid IS NULL OR d.tenant_id = %(tenant_id)s::uuid)
AND (%(since)s::timestamptz IS NULL OR d.failed_at >= %(since)s::timestamptz)
AND (%(until)s::timestamptz IS NULL OR d.failed_at < %(until)s::timestamptz)

-- name: list_dead_letters
SELECT id, tenant_id, job_id, queue, type, payload, priority, attempts, max_attempts, last_error, errors,
       idempotency_key, failed_at, replayed_at, replayed_job_id
FROM jobkeeper.dead_letter_jobs d
WHERE (%(ids)s::uuid[] IS NULL OR d.id = ANY(%(ids)s::uuid[]))
  -- use: dead_letter_filter
  AND (%(replayed)s::boolean IS NULL OR (d.replayed_at IS NOT NULL) = %(replayed)s::boolean)
  AND (%(before_failed_at)s::timestamptz IS NULL
       OR (d.failed_at, d.id) < (%(before_failed_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY d.failed_at DESC, d.id DESC
LIMIT %(limit)s;

-- name: replay_dead_letters
-- Each picked dead letter becomes a fresh pending job (attempts 0) with the same tenant, queue, type,
-- payload, priority, attempt budget and idempotency key; the dead letter records when and as which job.
-- A live idempotency key is pointed at the new job, so later duplicates return it.
WITH picked AS MATERIALIZED (
    SELECT d.id, d.tenant_id, d.queue, d.type, d.payload, d.priority, d.max_attempts, d.idempotency_key,
           gen_random_uuid() AS new_id
    FROM jobkeeper.dead_letter_jobs d
    WHERE d.replayed_at IS NULL
      AND (%(ids)s::uuid[] IS NULL OR d.id = ANY(%(ids)s::uuid[]))
      -- use: dead_letter_filter
    ORDER BY d.failed_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
),
fresh AS (
    INSERT INTO jobkeeper.jobs (id, tenant_id, queue, type, payload, tier, priority, max_attempts,
                                idempotency_key)
    SELECT p.new_id, p.tenant_id, p.queue, p.type, p.payload, q.tier, p.priority, p.max_attempts,
           p.idempotency_key
    FROM picked p
    JOIN jobkeeper.queues q ON q.name = p.queue
    RETURNING id, tenant_id, queue, type, payload, status, tier, priority, attempts, max_attempts,
              last_error, errors, result, progress, idempotency_key, scheduled_at, started_at,
              completed_at, created_at, updated_at
),
marked AS (
    UPDATE jobkeeper.dead_letter_jobs d
    SET replayed_at = now(), replayed_job_id = p.new_id
    FROM picked p
    WHERE d.id = p.id
),
rekeyed AS (
    UPDATE jobkeeper.idempotency_keys k
    SET job_id = p.new_id, result = NULL, processed_at = NULL
    FROM picked p
    WHERE p.idempotency_key IS NOT NULL AND k.tenant_id = p.tenant_id AND k.key = p.idempotency_key
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM fresh
    HAVING count(*) > 0
)
SELECT fresh.*
FROM fresh
LEFT JOIN notified ON true;

-- name: purge_dead_letters
DELETE FROM jobkeeper.dead_letter_jobs d
WHERE (%(ids)s::uuid[] IS NULL OR d.id = ANY(%(ids)s::uuid[]))
  -- use: dead_letter_filter
  AND (%(replayed)s::boolean IS NULL OR (d.replayed_at IS NOT NULL) = %(replayed)s::boolean)
RETURNING d.id;

-- name: count_dead_letters
SELECT count(*) AS total
FROM jobkeeper.dead_letter_jobs d
WHERE (%(ids)s::uuid[] IS NULL OR d.id = ANY(%(ids)s::uuid[]))
  -- use: dead_letter_filter
  AND (%(replayed)s::boolean IS NULL OR (d.replayed_at IS NOT NULL) = %(replayed)s::boolean);

-- name: dead_letter_watermark
-- The newest failure time the previous dead-letter alert covered: newer dead letters are new.
SELECT (details->>'latest')::timestamptz AS latest
FROM jobkeeper.alert_history
WHERE rule = 'money_dead_letter'
ORDER BY created_at DESC
LIMIT 1;

-- name: new_dead_letters
-- Dead letters of durable (money) queues since the given instant, per queue.
SELECT d.queue, count(*) AS dead, max(d.failed_at) AS latest,
       (array_agg(d.job_id ORDER BY d.failed_at DESC))[1:10] AS job_ids
FROM jobkeeper.dead_letter_jobs d
JOIN jobkeeper.queues q ON q.name = d.queue
WHERE q.tier = 'durable' AND d.failed_at > %(since)s::timestamptz
GROUP BY d.queue;
