-- Named queries about the server and the request itself. Each API request runs in one transaction that
-- starts with `api_enter` (role and tenant, both transaction-local); row-level security then scopes every
-- statement after it to the caller's tenant.

-- name: api_enter
-- The role is one of two constants chosen by the code (jobkeeper_api for tenants, jobkeeper_worker for
-- platform admins); set_config('role', …, true) is SET LOCAL ROLE with a parameter. An empty tenant
-- matches no row under the tenant policy. tenant_active is the token's tenant's flag, NULL when there
-- is no such tenant (read as the connection's own role: the new role applies from the next statement).
SELECT set_config('role', %(role)s::text, true) AS role,
       set_config('jobkeeper.tenant_id', %(tenant_id)s::text, true) AS tenant_id,
       set_config('synchronous_commit',
                  COALESCE(%(synchronous_commit)s::text, current_setting('synchronous_commit')),
                  true) AS synchronous_commit,
       now() AS now,
       (SELECT active FROM jobkeeper.tenants WHERE id = %(principal_tenant)s::uuid) AS tenant_active;

-- name: api_ping
SELECT 1 AS ok;

-- name: database_now
SELECT now() AS now;
