"""SQL of audit events (insert and read only: the app role may do nothing else)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from backend.audit.models import AuditEvent
from backend.audit.schemas import AuditFilters
from backend.kit.db import current_system_scope, current_tenant_id
from backend.kit.repository import NoTenantScope, Repository


class AuditRepository(Repository[AuditEvent]):
    model = AuditEvent
    resource_name = "Audit event"

    def _tenant_filter(self, stmt: Select[Any]) -> Select[Any]:
        # `tenant_id` is nullable here (platform events), so AuditEvent is not
        # `TenantOwned`; filter explicitly like the base class does for those.
        tenant_id = current_tenant_id()
        if tenant_id is not None:
            return stmt.where(AuditEvent.tenant_id == tenant_id)
        if current_system_scope() is None:
            raise NoTenantScope("audit events queried without a tenant")
        return stmt

    def filtered(self, filters: AuditFilters) -> Select[Any]:
        stmt = self.select()
        if filters.tenant_id is not None:
            stmt = stmt.where(AuditEvent.tenant_id == filters.tenant_id)
        if filters.actor_id is not None:
            stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
        if filters.action is not None:
            if filters.action.endswith(".*"):
                # `user.*`: every action of a resource kind
                prefix = filters.action[:-1]
                stmt = stmt.where(AuditEvent.action.startswith(prefix, autoescape=True))
            else:
                stmt = stmt.where(AuditEvent.action == filters.action)
        if filters.resource_type is not None:
            stmt = stmt.where(AuditEvent.resource_type == filters.resource_type)
        if filters.resource_id is not None:
            stmt = stmt.where(AuditEvent.resource_id == filters.resource_id)
        if filters.since is not None:
            stmt = stmt.where(AuditEvent.created_at >= filters.since)
        if filters.until is not None:
            stmt = stmt.where(AuditEvent.created_at < filters.until)
        return stmt
