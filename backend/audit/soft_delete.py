"""The soft-delete and restore steps that resources share: the row fetched by
id (for a restore, deleted rows too), its state checked, the change made
through its repository and recorded in the audit log, all in the caller's
transaction. Events stay with the callers: their names and shapes differ."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor, audit_service
from backend.kit.models import Base, SoftDeletable
from backend.kit.repository import Repository

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class SoftDeletion(Generic[M]):
    """One kind of soft-deletable row: its repository, and the resource type
    and actions its deletions and restores are audited under."""

    repository: Callable[[AsyncSession], Repository[M]]
    resource_type: str
    deleted_action: str
    restored_action: str

    async def delete(self, session: AsyncSession, actor: Actor, row_id: UUID) -> M:
        """Soft-deletes the live row `row_id` (NotFound if there is none)."""
        repository = self.repository(session)
        row = await repository.get_or_raise(row_id)
        await repository.soft_delete(row, by=actor.id)
        await audit_service.record(session, actor, self.deleted_action, self.resource_type, row.id)
        return row

    async def restore(
        self,
        session: AsyncSession,
        actor: Actor,
        row_id: UUID,
        *,
        check: Callable[[M], Awaitable[None]] | None = None,
    ) -> tuple[M, bool]:
        """Restores the row `row_id` if it is deleted (`check` may refuse by
        raising first). Returns the row and whether it was restored: a live
        row is returned as it is, nothing recorded."""
        repository = self.repository(session)
        row = await repository.get_or_raise(row_id, include_deleted=True)
        assert isinstance(row, SoftDeletable)
        if row.deleted_at is None:
            return row, False
        if check is not None:
            await check(row)
        await repository.restore(row)
        await audit_service.record(session, actor, self.restored_action, self.resource_type, row.id)
        return row, True
