"""`/api/v1/audit-events`: the tenant's audit trail (`audit:read`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from backend.audit.deps import AuditQuery
from backend.audit.schemas import AuditEventOut
from backend.audit.service import audit_service
from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.kit.deps import DbSession
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.roles.permissions import Permission

router = APIRouter(prefix="/audit-events", tags=["audit-events"])


@router.get(
    "",
    response_model=Page[AuditEventOut] | CursorPage[AuditEventOut],
    description="Filters: `actor_id`, `action`, `resource_type`, `resource_id`, "
    "`since` (inclusive), `until` (exclusive). Newest first by default.",
)
async def list_audit_events(
    principal: Annotated[Principal, require(Permission.AUDIT_READ)],
    session: DbSession,
    filters: AuditQuery,
    query: Annotated[ListQuery, list_query(["created_at", "action"])],
) -> Page[AuditEventOut] | CursorPage[AuditEventOut]:
    result = await audit_service.list_events(session, filters, query)
    return result.envelope([AuditEventOut.model_validate(row) for row in result.items])
