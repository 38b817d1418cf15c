-- Named queries of the admin commands (`jobkeeper schedules …`, `jobkeeper limits …`). A schedule is
-- named by its id or by its name within the tenant.

-- name: cli_set_schedule_active
UPDATE jobkeeper.schedules
SET active = %(active)s::boolean,
    next_run_at = CASE WHEN %(active)s::boolean THEN NULL ELSE next_run_at END
WHERE tenant_id = %(tenant_id)s::uuid AND (id::text = %(ref)s::text OR name = %(ref)s::text)
RETURNING id, name, active;

-- name: cli_delete_schedule
DELETE FROM jobkeeper.schedules
WHERE tenant_id = %(tenant_id)s::uuid AND (id::text = %(ref)s::text OR name = %(ref)s::text)
RETURNING id, name;
