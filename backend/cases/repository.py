"""SQL of cases and their per-tenant reference counter."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, text
from sqlalchemy.dialects.postgresql import insert

from backend.cases.models import Case, CaseCounter
from backend.kit.repository import Repository


class CaseRepository(Repository[Case]):
    model = Case
    resource_name = "Case"

    async def next_reference_number(self, tenant_id: UUID) -> int:
        """Atomically take the tenant's next number. The upsert's row lock
        serialises concurrent creates until their transactions end."""
        stmt = (
            insert(CaseCounter)
            .values(tenant_id=tenant_id, last_value=1)
            .on_conflict_do_update(
                index_elements=[CaseCounter.tenant_id],
                set_={"last_value": CaseCounter.last_value + 1, "updated_at": func.now()},
            )
            .returning(CaseCounter.last_value)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    def filtered(
        self,
        *,
        include_deleted: bool = False,
        status: str | None = None,
        priority: str | None = None,
        assignee_id: UUID | None = None,
        tag: str | None = None,
        q: str | None = None,
        due_after: datetime | None = None,
        due_before: datetime | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if status is not None:
            stmt = stmt.where(Case.status == status)
        if priority is not None:
            stmt = stmt.where(Case.priority == priority)
        if assignee_id is not None:
            stmt = stmt.where(Case.assignee_id == assignee_id)
        if tag is not None:
            stmt = stmt.where(Case.tags.contains([tag]))
        if q is not None:
            query = func.websearch_to_tsquery(text("'english'::regconfig"), q)
            stmt = stmt.where(Case.search_vector.op("@@")(query))
        if due_after is not None:
            stmt = stmt.where(Case.due_at >= due_after)
        if due_before is not None:
            stmt = stmt.where(Case.due_at < due_before)
        if created_after is not None:
            stmt = stmt.where(Case.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(Case.created_at < created_before)
        return stmt

    async def purge_deleted_before(self, cutoff: datetime) -> int:
        from sqlalchemy import delete

        stmt = delete(Case).where(Case.deleted_at.is_not(None), Case.deleted_at < cutoff)
        result = await self.session.execute(stmt.returning(Case.id))
        return len(result.all())
