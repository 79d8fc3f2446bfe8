"""SQL of segmentations, segments and segment files.

What the API serves goes through `DocumentFilter`s: conditions on a document
id column that the documents domain supplies (`live_clause`,
`kept_by_purge`), so that segmentations follow their mesh document without
this workload writing SQL over the documents table. The job's own reads
(`by_job`, `get`, `of_segmentation`) see every row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from sqlalchemy import Select, delete, func, not_, select

from backend.kit.errors import NotFound
from backend.kit.models import Base
from backend.kit.repository import Repository, tenant_total
from backend.scans.models import ACTIVE, Segment, Segmentation, SegmentFile

# A SQL condition on the expression of a document id (a column).
DocumentFilter = Callable[[Any], Any]
M = TypeVar("M", bound=Base)


class _OfDocument(Repository[M]):
    """Rows made from a mesh document, served while it passes a filter."""

    document_column: ClassVar[Any]  # the model's document id

    def served(self, live: DocumentFilter) -> Select[Any]:
        return self.select().where(live(type(self).document_column))

    async def get_served(self, row_id: UUID, live: DocumentFilter) -> M:
        """The row if its document passes `live`, else 404."""
        stmt = self.served(live).where(self.model.id == row_id)
        found: M | None = (await self.session.execute(stmt)).scalar_one_or_none()
        if found is None:
            raise NotFound(f"{self.resource_name} not found")
        return found


class SegmentationRepository(_OfDocument[Segmentation]):
    model = Segmentation
    resource_name = "Segmentation"
    document_column = Segmentation.document_id

    def of_case(
        self,
        case_id: UUID,
        live: DocumentFilter,
        status: str | None = None,
        method: str | None = None,
    ) -> Select[Any]:
        stmt = self.served(live).where(Segmentation.case_id == case_id)
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

    async def counts_of_case(self, case_id: UUID, live: DocumentFilter) -> list[Segmentation]:
        stmt = (
            self.served(live)
            .where(Segmentation.case_id == case_id)
            .order_by(Segmentation.created_at, Segmentation.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def purge(self, kept: DocumentFilter) -> tuple[int, list[str]]:
        """Hard-delete the segmentations whose document `kept` does not keep
        (segments and files go by cascade); the count and the files' storage
        keys (system scope)."""
        doomed = not_(kept(Segmentation.document_id))
        keys = select(SegmentFile.storage_key).where(
            SegmentFile.segment_id.in_(
                select(Segment.id).where(
                    Segment.segmentation_id.in_(select(Segmentation.id).where(doomed))
                )
            )
        )
        found = list((await self.session.execute(keys)).scalars())
        deleted = await self.session.execute(
            delete(Segmentation).where(doomed).returning(Segmentation.id)
        )
        return len(deleted.all()), found


class SegmentRepository(_OfDocument[Segment]):
    model = Segment
    resource_name = "Segment"
    document_column = Segment.document_id

    def of_case(
        self, case_id: UUID, live: DocumentFilter, segmentation_id: UUID | None = None
    ) -> Select[Any]:
        stmt = self.served(live).where(Segment.case_id == case_id)
        if segmentation_id is not None:
            stmt = stmt.where(Segment.segmentation_id == segmentation_id)
        return stmt

    async def of_segmentation(self, segmentation_id: UUID) -> list[Segment]:
        stmt = (
            self.select().where(Segment.segmentation_id == segmentation_id).order_by(Segment.number)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def totals_of_case(
        self, case_id: UUID, live: DocumentFilter
    ) -> tuple[int, int, float, float]:
        """Count, faces, surface area and (watertight) volume of a case's
        segments whose document passes `live`."""
        totals: Any = select(
            func.count(),
            func.coalesce(func.sum(Segment.faces), 0),
            func.coalesce(func.sum(Segment.surface_area), 0.0),
            func.coalesce(func.sum(Segment.volume), 0.0),
        )
        stmt = self._tenant_filter(totals).where(
            Segment.case_id == case_id, live(Segment.document_id)
        )
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
        return tenant_total(SegmentFile.size, SegmentFile.tenant_id, tenant_id)

    async def of_segmentation(self, segmentation_id: UUID) -> list[SegmentFile]:
        stmt = self.select().where(
            SegmentFile.segment_id.in_(
                select(Segment.id).where(Segment.segmentation_id == segmentation_id)
            )
        )
        return list((await self.session.execute(stmt)).scalars())
