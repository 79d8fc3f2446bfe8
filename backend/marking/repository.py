"""SQL of marking guides, sheets and batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, or_, select

from backend.kit.repository import Repository
from backend.marking.models import FINISHED, MarkingBatch, MarkingGuide, MarkingSheet


class GuideRepository(Repository[MarkingGuide]):
    model = MarkingGuide
    resource_name = "Marking guide"

    def filtered(
        self, *, subject: str | None = None, q: str | None = None, include_deleted: bool = False
    ) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if subject is not None:
            stmt = stmt.where(MarkingGuide.subject == subject)
        if q is not None:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(MarkingGuide.title.ilike(pattern), MarkingGuide.subject.ilike(pattern))
            )
        return stmt

    async def has_scored_sheets(self, guide_id: UUID) -> bool:
        """Whether any sheet (deleted ones too) was ever scored with the guide."""
        sheets = SheetRepository(self.session).select(include_deleted=True)
        stmt = sheets.where(MarkingSheet.guide_id == guide_id, MarkingSheet.marked_at.is_not(None))
        return bool(await self.session.scalar(select(stmt.exists())))


class SheetRepository(Repository[MarkingSheet]):
    model = MarkingSheet
    resource_name = "Marking sheet"

    def filtered(
        self,
        *,
        guide_id: UUID | None = None,
        batch_id: UUID | None = None,
        status: str | None = None,
        student_id: str | None = None,
        requires_review: bool | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
    ) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if guide_id is not None:
            stmt = stmt.where(MarkingSheet.guide_id == guide_id)
        if batch_id is not None:
            stmt = stmt.where(MarkingSheet.batch_id == batch_id)
        if status is not None:
            stmt = stmt.where(MarkingSheet.status == status)
        if student_id is not None:
            stmt = stmt.where(MarkingSheet.student_id == student_id)
        if requires_review is not None:
            stmt = stmt.where(MarkingSheet.requires_review.is_(requires_review))
        if created_after is not None:
            stmt = stmt.where(MarkingSheet.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(MarkingSheet.created_at < created_before)
        return stmt

    async def in_batch(self, batch_id: UUID) -> list[MarkingSheet]:
        stmt = self.select().where(MarkingSheet.batch_id == batch_id)
        stmt = stmt.order_by(MarkingSheet.created_at, MarkingSheet.id)
        return list((await self.session.execute(stmt)).scalars())

    async def status_counts(self, batch_id: UUID) -> dict[str, int]:
        stmt = (
            self.select()
            .where(MarkingSheet.batch_id == batch_id)
            .with_only_columns(MarkingSheet.status, func.count())
            .group_by(MarkingSheet.status)
        )
        return {str(status): int(count) for status, count in await self.session.execute(stmt)}

    async def lock(self, sheet_id: UUID) -> MarkingSheet | None:
        stmt = self.select(include_deleted=True).where(MarkingSheet.id == sheet_id)
        result = await self.session.execute(stmt.with_for_update())
        sheet: MarkingSheet | None = result.scalar_one_or_none()
        return sheet


class BatchRepository(Repository[MarkingBatch]):
    model = MarkingBatch
    resource_name = "Marking batch"

    async def lock(self, batch_id: UUID) -> MarkingBatch | None:
        stmt = self.select().where(MarkingBatch.id == batch_id).with_for_update()
        batch: MarkingBatch | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return batch

    async def unfinished(self, batch_id: UUID) -> int:
        stmt = (
            SheetRepository(self.session)
            .select()
            .where(MarkingSheet.batch_id == batch_id, MarkingSheet.status.not_in(FINISHED))
            .with_only_columns(func.count())
        )
        return int(await self.session.scalar(stmt) or 0)


async def purge_deleted_before(session: Any, cutoff: datetime) -> int:
    """Hard-delete guides and sheets soft-deleted before `cutoff` (a guide
    takes its sheets and batches with it, by cascade)."""
    removed = 0
    for model in (MarkingSheet, MarkingGuide):
        stmt = delete(model).where(model.deleted_at.is_not(None), model.deleted_at < cutoff)
        removed += len((await session.execute(stmt.returning(model.id))).all())
    return removed
