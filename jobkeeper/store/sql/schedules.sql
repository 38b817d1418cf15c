-- Named queries of cron schedules: the scheduler's tick (it runs on the maintenance leader) and the
-- API's, the dashboard's and the CLI's reads and writes. A schedule is named by its id, or by its name
-- within the tenant.

-- name: due_schedules
-- Due schedules, round-robin between tenants: every tenant's most overdue schedule, then every tenant's
-- second, and so on, so one tenant's backlog never fills a tick ahead of another tenant's turn. Read
-- without locks: the scheduler plans outside any transaction and locks only what it then writes
-- (`lock_due_schedules`). A tenant whose scheduler bucket (%(bucket_key)s in rate_limits, refilled from
-- the database clock as in `take_tokens`) holds less than one token is left out: its schedules stay
-- due and would only take the places of other tenants' schedules.
WITH clock AS (SELECT COALESCE(%(now)s::timestamptz, now()) AS now),
due AS (
    SELECT s.id, s.next_run_at,
           row_number() OVER (PARTITION BY s.tenant_id ORDER BY s.next_run_at NULLS FIRST, s.id) AS tenant_rank
    FROM jobkeeper.schedules s, clock
    WHERE s.active AND (s.next_run_at IS NULL OR s.next_run_at <= clock.now)
      AND NOT EXISTS (
          SELECT FROM jobkeeper.rate_limits r
          WHERE r.tenant_id = s.tenant_id AND r.key = %(bucket_key)s::text
            AND least(r.capacity, r.tokens + greatest(extract(epoch FROM now() - r.refilled_at), 0)
                                             * r.refill_per_second) < 1)
)
SELECT s.id, s.tenant_id, s.name, s.cron, s.timezone, s.queue, s.job_type, s.payload, s.priority,
       s.missed_policy, s.catch_up_window_seconds, s.overlap_policy, s.next_run_at, s.last_job_id,
       s.updated_at, clock.now,
       (SELECT j.status FROM jobkeeper.jobs j WHERE j.id = s.last_job_id LIMIT 1) AS last_job_status
FROM due d
JOIN jobkeeper.schedules s ON s.id = d.id
CROSS JOIN clock
ORDER BY d.tenant_rank, d.next_run_at NULLS FIRST, d.id
LIMIT %(limit)s;

-- name: lock_due_schedules
-- The schedules a tick is about to fire or advance, locked for its short transaction, and only those
-- nothing changed since `due_schedules` read them (updated_at moves on every update, the scheduler's
-- own included): a schedule paused, edited or being deleted meanwhile is left alone (SKIP LOCKED), so
-- the scheduler never makes a tenant's DELETE wait for more than one short statement.
SELECT s.id
FROM jobkeeper.schedules s
JOIN unnest(%(ids)s::uuid[], %(versions)s::timestamptz[]) AS u(id, updated_at) ON s.id = u.id
WHERE s.active AND s.updated_at = u.updated_at
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

-- name: lock_tenant_schedules
-- Serialises the creates of one tenant's schedules until the transaction ends (the per-tenant cap is a
-- count, which two concurrent creates would otherwise both pass).
SELECT pg_advisory_xact_lock(hashtextextended('jobkeeper.schedules:' || %(tenant_id)s::text, 0));

-- name: insert_schedule
-- No row comes back when the tenant has %(max_schedules)s schedules already. Run after
-- `lock_tenant_schedules` in the same transaction, so two creates cannot both pass the count.
INSERT INTO jobkeeper.schedules (tenant_id, name, cron, timezone, queue, job_type, payload, priority, active,
                                 missed_policy, catch_up_window_seconds, overlap_policy, next_run_at)
SELECT %(tenant_id)s::uuid, %(name)s::text, %(cron)s::text, %(timezone)s::text, %(queue)s::text,
       %(job_type)s::text, %(payload)s::jsonb, %(priority)s::smallint, %(active)s::boolean,
       %(missed_policy)s::text, %(catch_up_window_seconds)s::float8, %(overlap_policy)s::text,
       %(next_run_at)s::timestamptz
WHERE (SELECT count(*) FROM jobkeeper.schedules WHERE tenant_id = %(tenant_id)s::uuid) < %(max_schedules)s::int
RETURNING id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
          catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
          created_at, updated_at;

-- name: list_schedules
-- By name, keyset-paged on (name, id). `name` finds one schedule of a tenant by its name (the CLI's).
SELECT id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
       catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
       created_at, updated_at
FROM jobkeeper.schedules s
WHERE (%(ids)s::uuid[] IS NULL OR s.id = ANY(%(ids)s::uuid[]))
  AND (%(tenant_id)s::uuid IS NULL OR s.tenant_id = %(tenant_id)s::uuid)
  AND (%(active)s::boolean IS NULL OR s.active = %(active)s::boolean)
  AND (%(queue)s::text IS NULL OR s.queue = %(queue)s::text)
  AND (%(job_type)s::text IS NULL OR s.job_type = %(job_type)s::text)
  AND (%(name)s::text IS NULL OR s.name = %(name)s::text)
  AND (%(after_name)s::text IS NULL OR (s.name, s.id) > (%(after_name)s::text, %(after_id)s::uuid))
ORDER BY s.name, s.id
LIMIT %(limit)s;

-- name: lock_schedule
SELECT id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
       catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
       created_at, updated_at
FROM jobkeeper.schedules
WHERE id = %(id)s::uuid
FOR UPDATE;

-- name: update_schedule
-- Every column is written from the merged, validated schedule the API computed under the row lock.
UPDATE jobkeeper.schedules
SET name = %(name)s::text,
    cron = %(cron)s::text,
    timezone = %(timezone)s::text,
    queue = %(queue)s::text,
    job_type = %(job_type)s::text,
    payload = %(payload)s::jsonb,
    priority = %(priority)s::smallint,
    active = %(active)s::boolean,
    missed_policy = %(missed_policy)s::text,
    catch_up_window_seconds = %(catch_up_window_seconds)s::float8,
    overlap_policy = %(overlap_policy)s::text,
    next_run_at = %(next_run_at)s::timestamptz
WHERE id = %(id)s::uuid
RETURNING id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
          catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
          created_at, updated_at;

-- name: delete_schedule
-- %(tenant_id)s, when given, must be the schedule's tenant too (the CLI names a tenant's schedule).
DELETE FROM jobkeeper.schedules
WHERE id = %(id)s::uuid AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
RETURNING id;

-- name: set_schedule_active
-- Pause or resume, run after `lock_schedule`: the caller computed %(next_run_at)s (NULL when paused).
UPDATE jobkeeper.schedules
SET active = %(active)s::boolean, next_run_at = %(next_run_at)s::timestamptz
WHERE id = %(id)s::uuid
RETURNING id, tenant_id, name, cron, timezone, queue, job_type, payload, priority, active, missed_policy,
          catch_up_window_seconds, overlap_policy, last_run_at, next_run_at, last_job_id, missed_runs,
          created_at, updated_at;

-- name: record_schedule_run
-- "Run now" enqueued %(job_id)s for this schedule; its regular slots are unchanged.
UPDATE jobkeeper.schedules
SET last_run_at = now(), last_job_id = %(job_id)s::uuid
WHERE id = %(id)s::uuid
RETURNING id;
