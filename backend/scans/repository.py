"""SQL of segmentations, segments and segment files."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, select

from backend.kit.repository import Repository
from backend.scans.models import ACTIVE, Segment, Segmentation, SegmentFile


class SegmentationRepository(Repository[Segmentation]):
    model = Segmentation
    resource_name = "Segmentation"

    def of_case(
        self, case_id: UUID, status: str | None = None, method: str | None = None
    ) -> Select[Any]:
        stmt = self.select().where(Segmentation.case_id == case_id)
        if status is not None:
            stmt = stmt.where(Segmentation.status == status)
        if method is not None:
            stmt = stmt.where(Segmentation.method == method)
        return stmt

    async def active(self, document_id: UUID, request_hash: str) -> Segmentation | None:
        """The queued or running run of this request, if any (the duplicate guard)."""
        stmt = self.select().where(
            Segmentation.document_id == document_id,
            Segmentation.request_hash == request_hash,
            Segmentation.status.in_([str(status) for status in ACTIVE]),
        )
        found: Segmentation | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def by_job(self, job_id: UUID) -> Segmentation | None:
        stmt = self.select().where(Segmentation.job_id == job_id)
        found: Segmentation | None = (
            await self.session.execute(stmt.limit(1))
        ).scalar_one_or_none()
        return found

    async def counts_of_case(self, case_id: UUID) -> list[Segmentation]:
        stmt = (
            self.select()
            .where(Segmentation.case_id == case_id)
            .order_by(Segmentation.created_at, Segmentation.id)
        )
        return list((await self.session.execute(stmt)).scalars())


class SegmentRepository(Repository[Segment]):
    model = Segment
    resource_name = "Segment"

    def of_case(self, case_id: UUID, segmentation_id: UUID | None = None) -> Select[Any]:
        stmt = self.select().where(Segment.case_id == case_id)
        if segmentation_id is not None:
            stmt = stmt.where(Segment.segmentation_id == segmentation_id)
        return stmt

    async def of_segmentation(self, segmentation_id: UUID) -> list[Segment]:
        stmt = (
            self.select().where(Segment.segmentation_id == segmentation_id).order_by(Segment.number)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def totals_of_case(self, case_id: UUID) -> tuple[int, int, float, float]:
        """Count, faces, surface area and (watertight) volume of a case's segments."""
        totals: Any = select(
            func.count(),
            func.coalesce(func.sum(Segment.faces), 0),
            func.coalesce(func.sum(Segment.surface_area), 0.0),
            func.coalesce(func.sum(Segment.volume), 0.0),
        )
        stmt = self._tenant_filter(totals).where(Segment.case_id == case_id)
        count, faces, area, volume = (await self.session.execute(stmt)).one()
        return int(count), int(faces), float(area), float(volume)


class SegmentFileRepository(Repository[SegmentFile]):
    model = SegmentFile
    resource_name = "Segment file"

    async def of_segments(self, segment_ids: list[UUID]) -> dict[UUID, dict[str, SegmentFile]]:
        if not segment_ids:
            return {}
        stmt = self.select().where(SegmentFile.segment_id.in_(segment_ids))
        found: dict[UUID, dict[str, SegmentFile]] = {}
        for row in (await self.session.execute(stmt)).scalars():
            found.setdefault(row.segment_id, {})[row.format] = row
        return found

    async def one(self, segment_id: UUID, format: str) -> SegmentFile | None:
        stmt = self.select().where(
            SegmentFile.segment_id == segment_id, SegmentFile.format == format
        )
        found: SegmentFile | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    @staticmethod
    def storage_bytes_of(tenant_id: Any) -> Any:
        """Bytes of the segment files of the tenant `tenant_id` (an
        expression), as a scalar subquery."""
        return (
            select(func.coalesce(func.sum(SegmentFile.size), 0))
            .where(SegmentFile.tenant_id == tenant_id)
            .scalar_subquery()
        )

    async def size_by_tenant(self) -> dict[UUID, int]:
        sizes: Any = select(SegmentFile.tenant_id, func.sum(SegmentFile.size))
        stmt = self._tenant_filter(sizes).group_by(SegmentFile.tenant_id)
        return {row[0]: int(row[1]) for row in (await self.session.execute(stmt)).all()}

    async def delete_of_tenants(self, tenant_ids: list[UUID]) -> list[str]:
        """Remove the files of these tenants; their storage keys to delete after commit."""
        stmt = (
            delete(SegmentFile)
            .where(SegmentFile.tenant_id.in_(tenant_ids))
            .returning(SegmentFile.storage_key)
        )
        return list((await self.session.execute(stmt)).scalars())
