-- Named queries of the maintenance leader: the lease, the rescuer.

-- name: acquire_lease
-- Take the lease when it is free or expired, or renew it when we hold it. No row back: someone else holds it.
INSERT INTO jobkeeper.leases AS l (name, holder, expires_at)
VALUES (%(name)s, %(holder)s, COALESCE(%(now)s::timestamptz, now()) + make_interval(secs => %(ttl)s))
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    expires_at = excluded.expires_at,
    acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END
WHERE l.holder = excluded.holder OR l.expires_at <= COALESCE(%(now)s::timestamptz, now())
RETURNING holder, acquired_at, expires_at;

-- name: release_lease
DELETE FROM jobkeeper.leases WHERE name = %(name)s AND holder = %(holder)s;

-- name: rescue_stale_jobs
-- Jobs whose heartbeat is older than the lease (database clock) lost their worker. They go back to
-- pending, or to failed (and the dead-letter table) when their attempts are spent, or to cancelled when a
-- cancel was requested. Rows are locked first (SKIP LOCKED), so a worker finishing the same job either
-- commits before (the job is no longer processing: untouched) or finds it rescued (its guarded update
-- changes nothing and the job runs again: delivery is at-least-once). A failed or cancelled job with
-- dependents is settled next (`settle_dependents`), cancelling its waiting children.
WITH clock AS MATERIALIZED (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now
),
stale AS (
    SELECT j.id, j.tier
    FROM jobkeeper.jobs j, clock
    WHERE j.status = 'processing'
      AND j.heartbeat_at < clock.now - make_interval(secs => %(lease_seconds)s)
    ORDER BY j.heartbeat_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
),
rescued AS (
    UPDATE jobkeeper.jobs j
    SET status = CASE WHEN j.cancel_requested THEN 'cancelled'
                      WHEN j.attempts >= j.max_attempts THEN 'failed'
                      ELSE 'pending' END,
        scheduled_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN j.scheduled_at
                            ELSE clock.now END,
        completed_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN clock.now END,
        worker_id = NULL,
        heartbeat_at = NULL,
        last_error = format('worker %%s lost: no heartbeat for %%s s', j.worker_id,
                            round(extract(epoch FROM clock.now - j.heartbeat_at))),
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'at', clock.now,
            'attempt', j.attempts,
            'type', 'WorkerLost',
            'message', format('worker %%s lost: no heartbeat for %%s s', j.worker_id,
                              round(extract(epoch FROM clock.now - j.heartbeat_at))),
            'traceback', NULL))
    FROM stale, clock
    WHERE j.id = stale.id AND j.tier = stale.tier
    RETURNING j.id, j.tenant_id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts,
              j.last_error, j.errors, j.idempotency_key, j.status, j.has_dependents
),
dead AS (
    INSERT INTO jobkeeper.dead_letter_jobs (tenant_id, job_id, queue, type, payload, priority, attempts,
                                            max_attempts, last_error, errors, idempotency_key, failed_at)
    SELECT r.tenant_id, r.id, r.queue, r.type, r.payload, r.priority, r.attempts, r.max_attempts,
           r.last_error, r.errors, r.idempotency_key, clock.now
    FROM rescued r, clock
    WHERE r.status = 'failed'
    ON CONFLICT (tenant_id, job_id) DO UPDATE
    -- The job failed again after a retry of its (replayed) dead letter: the dead letter is live again.
    SET attempts = excluded.attempts, max_attempts = excluded.max_attempts, last_error = excluded.last_error,
        errors = excluded.errors, failed_at = excluded.failed_at, replayed_at = NULL, replayed_job_id = NULL
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM rescued
    WHERE status = 'pending'
    HAVING count(*) > 0
)
SELECT r.id, r.status, r.has_dependents
FROM rescued r
LEFT JOIN notified ON true;

-- name: mark_lost_workers
UPDATE jobkeeper.workers
SET stopped_at = COALESCE(%(now)s::timestamptz, now())
WHERE stopped_at IS NULL
  AND heartbeat_at < COALESCE(%(now)s::timestamptz, now()) - make_interval(secs => %(lease_seconds)s)
RETURNING id;
