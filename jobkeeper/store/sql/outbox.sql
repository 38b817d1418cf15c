-- Named queries of the development outbox (jobkeeper.processors.outbox, the dashboard's Outbox page). A
-- kept message is the result of its completed send-email, send-sms or send-push job, so the jobs'
-- row-level security scopes it to its tenant like any job.

-- name: list_outbox
-- plan: per call
-- alias: dashboard_outbox
-- Messages kept in the outbox, newest first, keyset-paged on (created_at, id) through
-- jobs_type_created_idx. Only the embedded development setup has any.
SELECT j.id, j.tenant_id, j.type, j.result, j.completed_at, j.created_at
FROM jobkeeper.jobs j
WHERE j.type = ANY(%(types)s::text[])
  AND j.status = 'completed'
  AND j.result ->> 'transport' = %(transport)s::text
  AND (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (j.created_at, j.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s;
