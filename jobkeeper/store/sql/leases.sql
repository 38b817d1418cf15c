-- Named queries of the maintenance leader's lease.

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
