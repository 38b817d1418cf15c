"""Who may act for which tenant, and which queues a tenant may use."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from jobkeeper.api import problems
from jobkeeper.api.auth import Principal
from jobkeeper.types import Queue


def acting_tenant(principal: Principal, requested: uuid.UUID | None) -> uuid.UUID:
    """The tenant a write is for: the token's, or any tenant a platform admin names."""
    if requested is None or requested == principal.tenant_id:
        return principal.tenant_id
    if not principal.is_platform_admin:
        raise problems.forbidden("only platform admins may act for another tenant")
    return requested


def tenant_filter(principal: Principal, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The tenant a read is limited to: the caller's own; a platform admin's choice (None: every tenant)."""
    if principal.is_platform_admin:
        return requested
    if requested is not None and requested != principal.tenant_id:
        raise problems.forbidden("only platform admins may read another tenant's records")
    return principal.tenant_id


def may_enqueue(principal: Principal, job_type: str, data: Mapping[str, Any], tenant: uuid.UUID) -> None:
    """Job types whose work reaches beyond one tenant are for platform admins."""
    if principal.is_platform_admin:
        return
    if job_type == "cleanup-old-data":
        raise problems.forbidden("cleanup-old-data prunes every tenant's history: platform admins only")
    if job_type == "generate-report":
        target = data.get("tenant")
        if target is not None and str(target) != str(tenant):
            raise problems.forbidden("a report on another tenant, or on all of them, is for platform admins")


def queue_visible(queue: Queue, tenant_id: uuid.UUID | None) -> bool:
    """Shared platform queues are every tenant's; a tenant-owned queue is its owner's only."""
    return queue.tenant_id is None or tenant_id is None or queue.tenant_id == tenant_id
