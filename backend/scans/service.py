"""The rules of the scans workload: segmentations of a case's mesh
documents (validated, idempotent, guarded against duplicate submits),
their segments (labels and FDI tooth numbers that people set and re-runs
keep), segment downloads in four formats (converted on first request and
kept), signed download links and a per-case summary."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor, audit_service
from backend.auth.principal import Principal
from backend.cases.service import case_service
from backend.documents.meshes import MESH_MIME_TYPES, MeshFormat
from backend.documents.service import document_service
from backend.jobs.models import FINISHED
from backend.jobs.schemas import JobCreate
from backend.jobs.service import job_service
from backend.kit.errors import DossierError, NotFound, ValidationFailed
from backend.kit.http import Blob, check_if_match
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.storage import (
    Storage,
    active_storage,
    commit_after_commit,
    delete_after_commit,
    get_storage,
    key_for,
)
from backend.scans import sandbox
from backend.scans.models import ACTIVE, Segment, Segmentation, SegmentationStatus, SegmentFile
from backend.scans.repository import (
    SegmentationRepository,
    SegmentFileRepository,
    SegmentRepository,
)
from backend.scans.schemas import (
    SegmentationCount,
    SegmentationCreate,
    SegmentOut,
    SegmentSummary,
    SegmentUpdate,
)
from backend.settings import Settings
from backend.tenants.storage_quota import check_storage_quota

SEGMENT_JOB = "scan.segment"
ANALYZE_JOB = "scan.analyze"
SEGMENTATION_EVENTS = ("segmentation.completed", "segmentation.failed")

# Segmentations and segments are served while their mesh document is live:
# a soft-deleted document's are hidden (404, left out of lists and the
# summary) and come back with it; a purged document's are purged with it.
_live = document_service.live_clause


class NotProcessed(DossierError):
    status, code = 409, "not_processed"


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
    )


def request_hash(document_id: UUID, method: str, params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"document_id": str(document_id), "method": method, "params": params}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def limits(settings: Settings) -> sandbox.Limits:
    return sandbox.Limits(
        memory_bytes=settings.scan_memory_limit_bytes, cpu_seconds=settings.scan_cpu_seconds
    )


def segment_file_key(tenant_id: UUID, segment_id: UUID, format: str) -> str:
    return key_for("tenants", tenant_id, "segments", segment_id, format)


def segmentation_event(segmentation: Segmentation) -> dict[str, Any]:
    return {
        "segmentation_id": str(segmentation.id),
        "case_id": str(segmentation.case_id),
        "document_id": str(segmentation.document_id),
        "job_id": str(segmentation.job_id) if segmentation.job_id else None,
        "method": segmentation.method,
        "status": segmentation.status,
        "segment_count": segmentation.segment_count,
        "error": segmentation.error,
    }


def segment_resource(segment_id: UUID, format: str) -> str:
    """What a segment file's signed link signs."""
    return f"segment:{segment_id}:{format}"


def segment_blob(segment: Segment, file: SegmentFile) -> Blob:
    return Blob(
        storage_key=file.storage_key,
        size=file.size,
        sha256=file.sha256,
        content_type=file.content_type,
        filename=f"segment-{segment.number}.{file.format}",
    )


@dataclass(frozen=True, slots=True)
class Submitted:
    segmentation: Segmentation
    created: bool  # False: an earlier identical request (Idempotency-Key or still running)


class ScanService:
    # ---------------------------------------------------------- segmentations
    async def create_segmentation(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        case_id: UUID,
        body: SegmentationCreate,
        idempotency_key: str | None = None,
    ) -> Submitted:
        await case_service.get(session, case_id)
        params = body.params()
        job_body = JobCreate(
            type=SEGMENT_JOB,
            payload={"method": str(body.method), **params},
            document_id=body.document_id,
            case_id=case_id,
        )
        repository = SegmentationRepository(session)
        document = await self._mesh_document(session, case_id, body.document_id)
        digest = request_hash(document.id, str(body.method), params)
        running = await repository.active(document.id, digest)
        if running is not None:
            running = await self._synced(session, running)
            if running.status in ACTIVE:
                return Submitted(running, created=False)
        created = await job_service.create_job(
            session, settings, principal, job_body, idempotency_key=idempotency_key
        )
        if not created.created:  # the same Idempotency-Key and body as before
            earlier = await repository.by_job(created.job.id)
            if earlier is None:
                raise NotFound("The segmentation of this Idempotency-Key no longer exists")
            return Submitted(await self._synced(session, earlier), created=False)
        segmentation = Segmentation(
            case_id=case_id,
            document_id=document.id,
            job_id=created.job.id,
            method=str(body.method),
            params=params,
            request_hash=digest,
            status=SegmentationStatus.QUEUED,
            created_by=principal.id,
        )
        try:
            async with session.begin_nested():
                await repository.add(segmentation)
        except IntegrityError:
            # An identical request committed first: answer with it.
            winner = await repository.active(document.id, digest)
            if winner is None:
                raise
            return Submitted(winner, created=False)
        await audit_service.record(
            session,
            principal,
            "segmentation.created",
            "segmentation",
            segmentation.id,
            {"document_id": str(document.id), "method": segmentation.method, "params": params},
        )
        return Submitted(segmentation, created=True)

    async def _mesh_document(self, session: AsyncSession, case_id: UUID, document_id: UUID) -> Any:
        try:
            document = await document_service.get(session, document_id)
        except NotFound:
            raise _field_error("document_id", "No such document in this tenant") from None
        if document.case_id != case_id:
            raise _field_error("document_id", "The document is not attached to this case")
        if document.mime_type not in MESH_MIME_TYPES:
            raise _field_error("document_id", "The document is not a 3-D mesh (STL, PLY, OBJ, GLB)")
        if document.status != "processed":
            raise NotProcessed(
                f"The mesh has not been analysed successfully yet (status {document.status})"
            )
        return document

    async def _synced(self, session: AsyncSession, segmentation: Segmentation) -> Segmentation:
        """A queued or running segmentation whose job ended without running
        its handler (cancelled while queued, deleted) takes the job's state."""
        if segmentation.status not in ACTIVE or segmentation.job_id is None:
            return segmentation
        try:
            status: str | None = (await job_service.get_job(session, segmentation.job_id)).status
        except NotFound:
            status = None
        if status is None or (status in FINISHED and status != "succeeded"):
            segmentation.status = str(status or SegmentationStatus.CANCELLED)
            segmentation.finished_at = datetime.now(UTC)
            await session.flush()
        return segmentation

    async def get_segmentation(self, session: AsyncSession, segmentation_id: UUID) -> Segmentation:
        found = await SegmentationRepository(session).get_served(segmentation_id, _live)
        return await self._synced(session, found)

    async def list_segmentations(
        self, session: AsyncSession, case_id: UUID, query: ListQuery, **filters: Any
    ) -> PageResult[Segmentation]:
        await case_service.get(session, case_id)
        repository = SegmentationRepository(session)
        page = await repository.paginate(repository.of_case(case_id, _live, **filters), query)
        for row in page.items:
            await self._synced(session, row)
        return page

    # --------------------------------------------------------------- segments
    async def segments_out(
        self, session: AsyncSession, segments: list[Segment]
    ) -> list[SegmentOut]:
        files = await SegmentFileRepository(session).of_segments([s.id for s in segments])
        return [
            SegmentOut.model_validate(segment).model_copy(
                update={"formats": sorted(files.get(segment.id, {}))}
            )
            for segment in segments
        ]

    async def list_segments(
        self, session: AsyncSession, case_id: UUID, query: ListQuery, segmentation_id: UUID | None
    ) -> PageResult[Segment]:
        await case_service.get(session, case_id)
        repository = SegmentRepository(session)
        stmt = repository.of_case(case_id, _live, segmentation_id)
        return await repository.paginate(stmt, query)

    async def get_segment(self, session: AsyncSession, segment_id: UUID) -> Segment:
        return await SegmentRepository(session).get_served(segment_id, _live)

    async def update_segment(
        self,
        session: AsyncSession,
        actor: Actor,
        segment_id: UUID,
        data: SegmentUpdate,
        *,
        if_match: str | None,
    ) -> Segment:
        repository = SegmentRepository(session)
        segment = await repository.get_served(segment_id, _live)
        check_if_match(if_match, segment.version)
        values = data.model_dump(exclude_unset=True)
        edited = sorted(set(segment.edited_fields) | set(values))
        changes = await repository.update(segment, {**values, "edited_fields": edited})
        changes.pop("edited_fields", None)
        if changes:
            await audit_service.record(
                session, actor, "segment.updated", "segment", segment.id, changes
            )
        return segment

    async def summary(self, session: AsyncSession, case_id: UUID) -> SegmentSummary:
        await case_service.get(session, case_id)
        count, faces, area, volume = await SegmentRepository(session).totals_of_case(case_id, _live)
        runs = await SegmentationRepository(session).counts_of_case(case_id, _live)
        return SegmentSummary(
            count=count,
            faces=faces,
            surface_area=area,
            volume=volume,
            by_segmentation=[
                SegmentationCount(id=run.id, method=run.method, segment_count=run.segment_count)
                for run in runs
            ],
        )

    # ------------------------------------------------------ storage and purge
    def storage_usage(self, tenant_id: Any) -> Any:
        """Usage `storage_bytes` share: the segment files of the tenant
        `tenant_id` (an expression), as a scalar subquery."""
        return SegmentFileRepository.storage_bytes_of(tenant_id)

    async def purge(self, session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
        """Admin purge: the segmentations of every document this purge removes
        (soft-deleted past retention, or of a purged tenant) or that is
        already gone, with their segments and files; the files' blobs are
        deleted once the purge commits. The count of segmentations."""
        kept = partial(document_service.kept_by_purge, cutoff=cutoff, tenant_ids=tenant_ids)
        purged, keys = await SegmentationRepository(session).purge(kept)
        storage = active_storage()
        for key in keys:
            delete_after_commit(session, storage, key)
        return purged

    # -------------------------------------------------------------- downloads
    async def segment_file(
        self, session: AsyncSession, settings: Settings, segment_id: UUID, format: MeshFormat
    ) -> tuple[Segment, SegmentFile]:
        """The segment's file in `format`, converted now from a stored format
        (in the sandboxed child) and kept if it is the first request."""
        segment = await SegmentRepository(session).get_served(segment_id, _live)
        files = SegmentFileRepository(session)
        existing = await files.of_segments([segment.id])
        stored = existing.get(segment.id, {})
        if format in stored:
            return segment, stored[format]
        if not stored:
            raise NotFound("This segment has no stored file to convert from")
        storage = get_storage(settings)
        source = stored.get("ply") or next(iter(stored.values()))
        row = await self._convert(session, settings, storage, segment, source, format)
        return segment, row

    async def _convert(
        self,
        session: AsyncSession,
        settings: Settings,
        storage: Storage,
        segment: Segment,
        source: SegmentFile,
        format: MeshFormat,
    ) -> SegmentFile:
        with tempfile.TemporaryDirectory(prefix="dossier-convert-") as folder:
            source_path = Path(folder) / f"source.{source.format}"
            with source_path.open("wb") as handle:
                async for chunk in storage.open_range(source.storage_key):
                    handle.write(chunk)
            target_path = Path(folder) / f"target.{format}"
            try:
                await sandbox.run(
                    "backend.scans.pipeline:convert_file",
                    str(source_path),
                    str(target_path),
                    str(format),
                    limits=limits(settings),
                )
            except sandbox.SandboxError as error:
                raise DossierError(f"The conversion failed: {error.message}") from None
            size = target_path.stat().st_size
            await check_storage_quota(
                session,
                settings,
                segment.tenant_id,
                size,
                what=f"This segment as {format.name.upper()} ({size} bytes)",
                lock=True,
            )
            staged = await storage.put_stream(
                segment_file_key(segment.tenant_id, segment.id, str(format)),
                _read_file(target_path),
                content_type=format.mime_type,
            )
        row = SegmentFile(
            tenant_id=segment.tenant_id,
            segment_id=segment.id,
            format=str(format),
            content_type=format.mime_type,
            size=staged.size,
            sha256=staged.sha256,
            storage_key=staged.key,
        )
        files = SegmentFileRepository(session)
        try:
            async with session.begin_nested():
                await files.add(row)
        except IntegrityError:
            # A concurrent first request converted it too; keep theirs.
            await storage.discard(staged)
            winner = await files.one(segment.id, str(format))
            if winner is None:
                raise
            return winner
        commit_after_commit(session, storage, staged)
        return row


async def _read_file(path: Path, chunk_size: int = 1024 * 1024) -> Any:
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


scan_service = ScanService()
