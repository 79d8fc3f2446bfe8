"""Writing audit events, in the same transaction as the change they record."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import and_, false, or_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.models import ActorType, AuditEvent
from backend.audit.repository import AuditRepository
from backend.audit.schemas import AuditFilters
from backend.kit.db import current_tenant_id
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.request_context import current_client, current_request_id


class Actor(Protocol):
    """Anything that acts: a `Principal`, or None for the system itself."""

    @property
    def id(self) -> UUID: ...

    @property
    def actor_type(self) -> ActorType: ...


class AuditService:
    async def record(
        self,
        session: AsyncSession,
        actor: Actor | None,
        action: str,
        resource_type: str,
        resource_id: UUID | str | None,
        changes: dict[str, Any] | None = None,
        *,
        tenant_id: UUID | None = None,
    ) -> AuditEvent:
        client = current_client()
        event = AuditEvent(
            tenant_id=tenant_id or current_tenant_id(),
            actor_type=actor.actor_type if actor else ActorType.SYSTEM,
            actor_id=actor.id if actor else None,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id) if resource_id is not None else None,
            changes=changes or {},
            ip=client.ip,
            user_agent=client.user_agent,
            request_id=current_request_id(),
        )
        return await AuditRepository(session).add(event)

    async def list_events(
        self, session: AsyncSession, filters: AuditFilters, query: ListQuery
    ) -> PageResult[AuditEvent]:
        """The current tenant's events (every tenant's inside a system scope)."""
        repository = AuditRepository(session)
        return await repository.paginate(repository.filtered(filters), query)

    async def list_for_resources(
        self, session: AsyncSession, resources: dict[str, list[str]], query: ListQuery
    ) -> PageResult[AuditEvent]:
        """The current tenant's events about any of `resources`
        (`{resource_type: [ids]}`), e.g. a case and its documents."""
        repository = AuditRepository(session)
        clauses = [
            and_(AuditEvent.resource_type == kind, AuditEvent.resource_id.in_(ids))
            for kind, ids in resources.items()
            if ids
        ]
        stmt = repository.select().where(or_(*clauses) if clauses else false())
        return await repository.paginate(stmt, query)


audit_service = AuditService()
