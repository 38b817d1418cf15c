-- Named queries of the cron scheduler (it runs on the maintenance leader).

-- name: due_schedules
-- Schedules whose next slot has come, locked so that two leaders overlapping for a moment never handle
-- the same schedule at once (and the per-slot idempotency key makes a fire unique even if they did).
SELECT s.id, s.tenant_id, s.name, s.cron, s.timezone, s.queue, s.job_type, s.payload, s.priority,
       s.missed_policy, s.catch_up_window_seconds, s.overlap_policy, s.next_run_at, s.last_job_id,
       (SELECT j.status FROM jobkeeper.jobs j WHERE j.id = s.last_job_id LIMIT 1) AS last_job_status
FROM jobkeeper.schedules s
WHERE s.active AND (s.next_run_at IS NULL OR s.next_run_at <= COALESCE(%(now)s::timestamptz, now()))
ORDER BY s.next_run_at NULLS FIRST
LIMIT %(limit)s
FOR UPDATE OF s SKIP LOCKED;

-- name: advance_schedules
UPDATE jobkeeper.schedules s
SET next_run_at = u.next_run_at,
    last_run_at = COALESCE(u.last_run_at, s.last_run_at),
    last_job_id = COALESCE(u.last_job_id, s.last_job_id),
    missed_runs = s.missed_runs + u.missed,
    active = s.active AND u.keep_active
FROM unnest(%(ids)s::uuid[], %(next_run_ats)s::timestamptz[], %(last_run_ats)s::timestamptz[],
            %(last_job_ids)s::uuid[], %(missed)s::integer[], %(keep_active)s::boolean[])
     AS u(id, next_run_at, last_run_at, last_job_id, missed, keep_active)
WHERE s.id = u.id;

-- name: clock_now
SELECT COALESCE(%(now)s::timestamptz, now()) AS now;
