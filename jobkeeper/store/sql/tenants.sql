-- Named queries of tenants.

-- name: missing_tenants
SELECT DISTINCT t.id
FROM unnest(%(tenant_ids)s::uuid[]) AS t(id)
WHERE NOT EXISTS (SELECT FROM jobkeeper.tenants WHERE tenants.id = t.id);

-- name: list_tenants
-- Tenants for the platform admin's tenant filter (a tenant's own role reads its own row only).
SELECT id, name, slug, active
FROM jobkeeper.tenants
ORDER BY name
LIMIT 500;
