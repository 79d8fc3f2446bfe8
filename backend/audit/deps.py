"""The audit list's query parameters, shared by the tenant and admin routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query

from backend.audit.schemas import AuditFilters


async def audit_filters(
    actor_id: Annotated[UUID | None, Query(description="User or API key id")] = None,
    action: Annotated[
        str | None,
        Query(max_length=100, description="Exact action (`user.created`), or a prefix: `user.*`"),
    ] = None,
    resource_type: Annotated[str | None, Query(max_length=50)] = None,
    resource_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601)")] = None,
) -> AuditFilters:
    return AuditFilters(
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
    )


AuditQuery = Annotated[AuditFilters, Depends(audit_filters)]
