-- Named queries of job dependencies (docs/concepts.md, "Dependencies").
--
-- Why the release is a statement of its own, run after the parent's completion has committed: under READ
-- COMMITTED a statement sees the jobs committed before it started. A child enqueued while its parent's
-- completion waits for the parent's row lock, or the other parent of a fan-in completing at the same
-- moment, is invisible to the completing statement itself. A statement that starts after the completion
-- committed sees every child linked before it (enqueue locks the parents, so a child is linked either
-- before the completion took the parent's row, or after it committed: then the enqueue sees the parent
-- completed), and for a fan-in the statement after the last parent's commit sees all parents completed.

-- name: add_dependencies
-- Link newly inserted `waiting` jobs (%(child_ids)s) to their parents (%(parent_ids)s, pairwise, with the
-- child's tenant). The parents are locked in id order (FOR NO KEY UPDATE, as the completion's UPDATE
-- takes it), flagged has_dependents, and read as they are after any completion that held the lock: a
-- child whose parents have all completed becomes pending (with a NOTIFY), one with a failed or cancelled
-- parent cancelled; the others stay waiting. Rows of kind `missing` name a parent that does not exist
-- or belongs to another tenant: the caller refuses the enqueue and rolls back.
WITH pairs AS (
    SELECT DISTINCT p.child_id, p.parent_id, p.tenant_id
    FROM unnest(%(child_ids)s::uuid[], %(parent_ids)s::uuid[], %(tenant_ids)s::uuid[])
         AS p(child_id, parent_id, tenant_id)
),
parents AS MATERIALIZED (
    SELECT j.id, j.tier, j.tenant_id, j.status, j.has_dependents
    FROM jobkeeper.jobs j
    WHERE j.id IN (SELECT parent_id FROM pairs)
    ORDER BY j.id
    FOR NO KEY UPDATE OF j
),
matched AS MATERIALIZED (
    SELECT pr.child_id, pr.parent_id, pr.tenant_id, p.status, p.tier, p.has_dependents
    FROM pairs pr
    JOIN parents p ON p.id = pr.parent_id AND p.tenant_id = pr.tenant_id
),
flagged AS (
    UPDATE jobkeeper.jobs j
    SET has_dependents = true
    FROM (SELECT DISTINCT parent_id, tier FROM matched WHERE NOT has_dependents) m
    WHERE j.id = m.parent_id AND j.tier = m.tier
),
linked AS (
    INSERT INTO jobkeeper.job_dependencies (depends_on, job_id, tenant_id)
    SELECT parent_id, child_id, tenant_id
    FROM matched
    ON CONFLICT DO NOTHING
),
verdict AS (
    SELECT m.child_id,
           bool_and(m.status = 'completed') AS ready,
           (array_agg(m.parent_id ORDER BY m.parent_id) FILTER (WHERE m.status IN ('failed', 'cancelled')))[1]
               AS broken_parent,
           (array_agg(m.status ORDER BY m.parent_id) FILTER (WHERE m.status IN ('failed', 'cancelled')))[1]
               AS broken_status
    FROM matched m
    GROUP BY m.child_id
),
settled AS (
    UPDATE jobkeeper.jobs c
    SET status = CASE WHEN v.broken_parent IS NULL THEN 'pending' ELSE 'cancelled' END,
        completed_at = CASE WHEN v.broken_parent IS NULL THEN NULL ELSE now() END,
        last_error = CASE WHEN v.broken_parent IS NULL THEN c.last_error
                          ELSE format('dependency %%s %%s', v.broken_parent,
                                      CASE v.broken_status WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END)
                     END
    FROM verdict v
    WHERE c.id = v.child_id AND c.status = 'waiting' AND (v.ready OR v.broken_parent IS NOT NULL)
    RETURNING c.id, c.status, c.queue, c.last_error, c.completed_at
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM settled
    WHERE status = 'pending'
    HAVING count(*) > 0
)
SELECT 'settled' AS kind, s.id AS job_id, NULL::uuid AS parent_id, s.status, s.last_error, s.completed_at
FROM settled s
LEFT JOIN notified ON true
UNION ALL
SELECT 'missing', pr.child_id, pr.parent_id, NULL, NULL, NULL
FROM pairs pr
WHERE NOT EXISTS (SELECT FROM matched m WHERE m.child_id = pr.child_id AND m.parent_id = pr.parent_id);

-- name: settle_dependents
-- Run after the outcomes of %(ids)s have committed (see the top of this file); idempotent. Waiting
-- children of completed parents whose parents have all completed become pending (not before their own
-- scheduled_at), with a NOTIFY. Waiting descendants of failed or cancelled parents become cancelled,
-- transitively, with last_error naming the parent that took them down. Children are locked in id order,
-- so two settles of a shared fan-in never deadlock. Returns the jobs it changed.
WITH RECURSIVE
finished AS MATERIALIZED (
    SELECT p.id, p.status
    FROM jobkeeper.jobs p
    WHERE p.id = ANY(%(ids)s::uuid[]) AND p.has_dependents
      AND p.status IN ('completed', 'failed', 'cancelled')
),
doomed (id, cause) AS (
    SELECT d.job_id,
           format('dependency %%s %%s', f.id, CASE f.status WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END)
    FROM finished f
    JOIN jobkeeper.job_dependencies d ON d.depends_on = f.id
    JOIN jobkeeper.jobs c ON c.id = d.job_id AND c.status = 'waiting'
    WHERE f.status IN ('failed', 'cancelled')
    UNION
    SELECT d.job_id, format('dependency %%s was cancelled', x.id)
    FROM doomed x
    JOIN jobkeeper.job_dependencies d ON d.depends_on = x.id
    JOIN jobkeeper.jobs c ON c.id = d.job_id AND c.status = 'waiting'
),
ready AS (
    SELECT DISTINCT d.job_id AS id
    FROM finished f
    JOIN jobkeeper.job_dependencies d ON d.depends_on = f.id
    JOIN jobkeeper.jobs c ON c.id = d.job_id AND c.status = 'waiting'
    WHERE f.status = 'completed'
      AND NOT EXISTS (SELECT FROM jobkeeper.job_dependencies o
                      LEFT JOIN jobkeeper.jobs p ON p.id = o.depends_on
                      WHERE o.job_id = d.job_id AND p.status IS DISTINCT FROM 'completed')
),
targets AS (
    (SELECT DISTINCT ON (id) id, cause FROM doomed ORDER BY id, cause)
    UNION ALL
    SELECT id, NULL FROM ready WHERE id NOT IN (SELECT id FROM doomed)
),
locked AS MATERIALIZED (
    SELECT c.id, c.tier, t.cause
    FROM jobkeeper.jobs c
    JOIN targets t ON t.id = c.id
    WHERE c.status = 'waiting'
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
),
changed AS (
    UPDATE jobkeeper.jobs c
    SET status = CASE WHEN l.cause IS NULL THEN 'pending' ELSE 'cancelled' END,
        scheduled_at = CASE WHEN l.cause IS NULL THEN greatest(c.scheduled_at, now()) ELSE c.scheduled_at END,
        completed_at = CASE WHEN l.cause IS NULL THEN NULL ELSE now() END,
        last_error = COALESCE(l.cause, c.last_error)
    FROM locked l
    WHERE c.id = l.id AND c.tier = l.tier AND c.status = 'waiting'
    RETURNING c.id, c.status, c.queue, c.has_dependents
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM changed
    WHERE status = 'pending'
    HAVING count(*) > 0
)
SELECT c.id, c.status, c.has_dependents
FROM changed c
LEFT JOIN notified ON true;

-- name: sweep_waiting_jobs
-- Safety net of the maintenance leader: waiting jobs (oldest first, at most %(limit)s) whose parents have
-- all finished are settled as `settle_dependents` would have (a path that finished a parent without it:
-- a crash between the completion and the settle, a manual UPDATE). A parent that no longer exists counts
-- as cancelled: nothing says it completed. Served by jobs_status_scheduled_idx (status leads).
WITH candidates AS MATERIALIZED (
    SELECT c.id, c.tier
    FROM jobkeeper.jobs c
    WHERE c.status = 'waiting'
      AND NOT EXISTS (SELECT FROM jobkeeper.job_dependencies d
                      JOIN jobkeeper.jobs p ON p.id = d.depends_on
                      WHERE d.job_id = c.id AND p.status IN ('waiting', 'pending', 'processing'))
    ORDER BY c.scheduled_at
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF c SKIP LOCKED
),
verdict AS (
    SELECT c.id, c.tier,
           (SELECT format('dependency %%s %%s', d.depends_on,
                          CASE p.status WHEN 'failed' THEN 'failed'
                                        WHEN 'cancelled' THEN 'was cancelled'
                                        ELSE 'no longer exists' END)
            FROM jobkeeper.job_dependencies d
            LEFT JOIN jobkeeper.jobs p ON p.id = d.depends_on
            WHERE d.job_id = c.id AND p.status IS DISTINCT FROM 'completed'
            ORDER BY d.depends_on
            LIMIT 1) AS cause
    FROM candidates c
),
changed AS (
    UPDATE jobkeeper.jobs c
    SET status = CASE WHEN v.cause IS NULL THEN 'pending' ELSE 'cancelled' END,
        scheduled_at = CASE WHEN v.cause IS NULL THEN greatest(c.scheduled_at, now()) ELSE c.scheduled_at END,
        completed_at = CASE WHEN v.cause IS NULL THEN NULL ELSE now() END,
        last_error = COALESCE(v.cause, c.last_error)
    FROM verdict v
    WHERE c.id = v.id AND c.tier = v.tier
    RETURNING c.id, c.status, c.queue, c.has_dependents
),
notified AS (
    SELECT pg_notify('jobkeeper_jobs', string_agg(DISTINCT queue, ',')) AS sent
    FROM changed
    WHERE status = 'pending'
    HAVING count(*) > 0
)
SELECT c.id, c.status, c.has_dependents
FROM changed c
LEFT JOIN notified ON true;

-- name: job_parents
-- The ids of the jobs %(id)s depends on (GET /jobs/{id}).
SELECT depends_on
FROM jobkeeper.job_dependencies
WHERE job_id = %(id)s::uuid
ORDER BY depends_on;

-- name: job_relations
-- The job page's "Depends on" (parents) and "Dependents" (children) lists, with their states; at most 500.
SELECT 'parent' AS relation, p.id, p.type, p.queue, p.status, p.completed_at
FROM jobkeeper.job_dependencies d
JOIN jobkeeper.jobs p ON p.id = d.depends_on
WHERE d.job_id = %(id)s::uuid
UNION ALL
SELECT 'child', c.id, c.type, c.queue, c.status, c.completed_at
FROM jobkeeper.job_dependencies d
JOIN jobkeeper.jobs c ON c.id = d.job_id
WHERE d.depends_on = %(id)s::uuid
ORDER BY 1 DESC, 2
LIMIT 500;
