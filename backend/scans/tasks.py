"""Job handlers of the scans workload.

- `scan.analyze` (queued when a mesh is uploaded, instead of text
  extraction): measures the mesh in the sandboxed child and stores
  `metadata.mesh` on the document, which becomes `processed`; a file that
  does not parse fails the job with the parser's reason and the document is
  `failed`.
- `scan.segment` (queued by `POST /cases/{id}/segmentations`): splits the
  mesh into segments in the child, which writes each segment in the
  requested formats; the worker stores those files and the segment rows and
  emits `segmentation.completed` (or `segmentation.failed`). The files are
  held to the tenant's storage quota, checked on their sizes before any is
  stored and again on the staged bytes under the tenant's storage lock just
  before the commit: past it the job fails for good and nothing is kept.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.documents.meshes import MeshFormat
from backend.documents.models import Document, DocumentStatus
from backend.documents.service import document_service
from backend.jobs.context import JobCancelled, JobContext
from backend.jobs.types import PermanentJobError, job_type
from backend.kit.errors import NotFound
from backend.kit.events import emit
from backend.kit.models import uuid7
from backend.kit.storage import StagedObject, commit_after_commit, delete_after_commit
from backend.scans import sandbox
from backend.scans.models import Segment, SegmentationStatus, SegmentFile
from backend.scans.repository import (
    SegmentationRepository,
    SegmentFileRepository,
    SegmentRepository,
)
from backend.scans.segmentation import Method
from backend.scans.service import (
    ANALYZE_JOB,
    SEGMENT_JOB,
    limits,
    segment_file_key,
    segmentation_event,
)

SEGMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "method": {"enum": [str(method) for method in Method]},
        "min_faces": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "crease_angle": {"type": "number", "exclusiveMinimum": 0, "maximum": 180},
        "formats": {
            "type": "array",
            "items": {"enum": [str(item) for item in MeshFormat]},
            "minItems": 1,
            "maxItems": 4,
            "uniqueItems": True,
        },
    },
    "required": ["method", "min_faces", "formats"],
    "additionalProperties": False,
}


async def document_source(ctx: JobContext) -> Document:
    """The job's document (its file is what the job reads)."""
    assert ctx.job.document_id is not None
    async with ctx.transaction() as session:
        try:
            return await document_service.source(session, ctx.job.document_id)
        except NotFound:
            raise PermanentJobError("The document no longer exists") from None


async def document_status(
    ctx: JobContext, status: DocumentStatus, mesh: dict[str, Any] | None = None
) -> None:
    assert ctx.job.document_id is not None
    async with ctx.transaction() as session:
        await document_service.record_processing(
            session, ctx.job.document_id, status, {"mesh": mesh} if mesh else None
        )


async def _download(ctx: JobContext, storage_key: str, path: Path) -> None:
    with path.open("wb") as handle:
        async for chunk in ctx.storage.open_range(storage_key):
            handle.write(chunk)


async def _chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


@job_type(
    ANALYZE_JOB,
    "Measure an uploaded 3-D mesh (STL, PLY, OBJ, GLB): counts, bounds, extents, "
    "surface area, volume, watertightness and components, stored in `metadata.mesh`.",
    schema={"type": "object", "additionalProperties": False},
    requires=("document",),
    timeout_seconds=900,
)
async def analyze(ctx: JobContext) -> dict[str, Any]:
    document = await document_source(ctx)
    await document_status(ctx, DocumentStatus.PROCESSING)
    try:
        with tempfile.TemporaryDirectory(prefix="dossier-scan-") as folder:
            path = Path(folder) / "mesh"
            await ctx.progress(10, "downloading")
            await _download(ctx, document.storage_key, path)
            await ctx.progress(30, "analysing")
            outcome = await sandbox.run(
                "backend.scans.pipeline:analyze_file",
                str(path),
                ctx.settings.scan_max_faces,
                limits=limits(ctx.settings),
            )
    except sandbox.SandboxError as error:
        await document_status(ctx, DocumentStatus.FAILED)
        raise PermanentJobError(f"The mesh could not be read: {error.message}") from None
    except Exception:
        if ctx.job.attempt >= ctx.job.max_attempts:  # no attempt left: the document failed
            await document_status(ctx, DocumentStatus.FAILED)
        raise
    mesh: dict[str, Any] = outcome.result
    await document_status(ctx, DocumentStatus.PROCESSED, mesh)
    await ctx.log(
        f"{mesh['format']}: {mesh['faces']} faces, {mesh['vertices']} vertices, "
        f"{mesh['components']} component(s), watertight {mesh['watertight']}"
    )
    return {"mesh": mesh}


@job_type(
    SEGMENT_JOB,
    "Split a case's mesh into segments (`components` or `curvature`), each stored in the "
    "requested formats; created through `POST /cases/{case_id}/segmentations`.",
    schema=SEGMENT_SCHEMA,
    requires=("document", "case"),
    timeout_seconds=1800,
)
async def segment(ctx: JobContext) -> dict[str, Any]:
    segmentation_id = await _start(ctx)
    try:
        return await _segment(ctx, segmentation_id)
    except JobCancelled:
        await _finish(ctx, segmentation_id, SegmentationStatus.CANCELLED, None)
        raise
    except sandbox.SandboxError as error:
        message = f"The segmentation failed: {error.message}"
        await _finish(ctx, segmentation_id, SegmentationStatus.FAILED, message)
        raise PermanentJobError(message) from None
    except PermanentJobError as error:
        await _finish(ctx, segmentation_id, SegmentationStatus.FAILED, str(error))
        raise
    except Exception as error:
        if ctx.job.attempt >= ctx.job.max_attempts:
            await _finish(ctx, segmentation_id, SegmentationStatus.FAILED, str(error))
        raise


async def _start(ctx: JobContext) -> Any:
    """The segmentation of this job (made here when the job came through
    `POST /jobs`), now running."""
    async with ctx.transaction() as session:
        repository = SegmentationRepository(session)
        segmentation = await repository.by_job(ctx.job.id)
        if segmentation is None:
            raise PermanentJobError(
                "No segmentation belongs to this job: create segmentations with "
                "POST /cases/{case_id}/segmentations"
            )
        segmentation.status = SegmentationStatus.RUNNING
        segmentation.error = None
        await session.flush()
        return segmentation.id


async def _finish(ctx: JobContext, segmentation_id: Any, status: str, error: str | None) -> None:
    async with ctx.transaction() as session:
        segmentation = await SegmentationRepository(session).get(segmentation_id)
        if segmentation is None:
            return
        segmentation.status = status
        segmentation.error = error
        segmentation.finished_at = datetime.now(UTC)
        await session.flush()
        if status == SegmentationStatus.FAILED:
            emit(session, "segmentation.failed", segmentation_event(segmentation))


async def _check_quota(
    ctx: JobContext, session: AsyncSession, segmentation_id: Any, size: int, *, lock: bool
) -> None:
    """Fail the job for good when `size` bytes of segment files, replacing an
    earlier attempt's, would pass the tenant's storage quota (`lock`: under
    the tenant's storage lock, as documents are created)."""
    earlier = await SegmentFileRepository(session).of_segmentation(segmentation_id)
    await ctx.check_storage_quota(
        session,
        size - sum(file.size for file in earlier),
        what=f"The segment files ({size} bytes)",
        lock=lock,
    )


def _written(parts: list[dict[str, Any]]) -> int:
    """Bytes of the segments' files as the child wrote them on disk."""
    files = [file for part in parts for file in part["files"].values()]
    return sum(Path(file["path"]).stat().st_size for file in files)


Stored = list[tuple[dict[str, Any], dict[str, StagedObject]]]


async def _store(ctx: JobContext, parts: list[dict[str, Any]]) -> Stored:
    """Stage every segment's files (none visible until the segments commit);
    if staging stops half-way, what was staged is discarded."""
    stored: Stored = []
    try:
        for number, part in enumerate(parts, start=1):
            files: dict[str, StagedObject] = {}
            stored.append((part, files))
            part["id"] = uuid7()
            for name, file in part["files"].items():
                key = segment_file_key(ctx.job.tenant_id, part["id"], name)
                files[name] = await ctx.storage.put_stream(
                    key, _chunks(Path(file["path"])), content_type=MeshFormat(name).mime_type
                )
            await ctx.progress(60 + 35 * number / max(len(parts), 1), f"segment {number}")
    except BaseException:
        for _, files in stored:
            for staged in files.values():
                await ctx.storage.discard(staged)
        raise
    return stored


async def _segment(ctx: JobContext, segmentation_id: Any) -> dict[str, Any]:
    document = await document_source(ctx)
    payload = ctx.payload
    formats = [str(item) for item in payload["formats"]]
    with tempfile.TemporaryDirectory(prefix="dossier-segment-") as folder:
        path = Path(folder) / "mesh"
        out = Path(folder) / "out"
        out.mkdir()
        await ctx.progress(5, "downloading")
        await _download(ctx, document.storage_key, path)
        await ctx.progress(15, "segmenting")
        outcome = await sandbox.run(
            "backend.scans.pipeline:segment_file",
            str(path),
            str(out),
            str(payload["method"]),
            int(payload["min_faces"]),
            float(payload.get("crease_angle", 30.0)),
            formats,
            ctx.settings.scan_max_faces,
            limits=limits(ctx.settings),
        )
        result: dict[str, Any] = outcome.result
        parts = result["parts"]
        async with ctx.transaction() as session:  # nothing is stored past the quota
            await _check_quota(ctx, session, segmentation_id, _written(parts), lock=False)
        await ctx.progress(60, f"storing {len(parts)} segment(s)")
        stored = await _store(ctx, parts)
    async with ctx.transaction() as session:
        for _, files in stored:  # visible at commit, discarded on any failure below
            for staged in files.values():
                commit_after_commit(session, ctx.storage, staged)
        repository = SegmentationRepository(session)
        segmentation = await repository.get(segmentation_id)
        if segmentation is None:
            raise PermanentJobError("The segmentation no longer exists")
        size = sum(staged.size for _, files in stored for staged in files.values())
        await _check_quota(ctx, session, segmentation_id, size, lock=True)
        files_repository = SegmentFileRepository(session)
        for old_file in await files_repository.of_segmentation(segmentation.id):
            delete_after_commit(session, ctx.storage, old_file.storage_key)
        segments = SegmentRepository(session)
        for old in await segments.of_segmentation(segmentation.id):  # an earlier attempt's
            await session.delete(old)
        for part, files in stored:
            row = await segments.add(
                Segment(
                    id=part["id"],
                    tenant_id=ctx.job.tenant_id,
                    segmentation_id=segmentation.id,
                    case_id=segmentation.case_id,
                    document_id=segmentation.document_id,
                    number=part["index"],
                    faces=part["faces"],
                    vertices=part["vertices"],
                    surface_area=part["surface_area"],
                    volume=part["volume"],
                    watertight=part["watertight"],
                    bounds=part["bounds"],
                    centroid=part["centroid"],
                    edited_fields=[],
                )
            )
            for name, staged in files.items():
                await files_repository.add(
                    SegmentFile(
                        tenant_id=ctx.job.tenant_id,
                        segment_id=row.id,
                        format=name,
                        content_type=MeshFormat(name).mime_type,
                        size=staged.size,
                        sha256=staged.sha256,
                        storage_key=staged.key,
                    )
                )
        segmentation.status = SegmentationStatus.SUCCEEDED
        segmentation.segment_count = len(stored)
        segmentation.discarded_faces = result["discarded_faces"]
        segmentation.total_faces = result["total_faces"]
        segmentation.finished_at = datetime.now(UTC)
        await session.flush()
        emit(session, "segmentation.completed", segmentation_event(segmentation))
    seconds = result["seconds"]
    await ctx.log(
        f"{len(stored)} segment(s), {result['discarded_faces']} face(s) discarded of "
        f"{result['total_faces']}; read {seconds['read']} s, segment {seconds['segment']} s, "
        f"write {seconds['write']} s; peak child memory {outcome.peak_rss_bytes >> 20} MiB"
    )
    return {
        "segmentation_id": str(segmentation_id),
        "segment_count": len(stored),
        "discarded_faces": result["discarded_faces"],
        "total_faces": result["total_faces"],
        "seconds": seconds,
        "memory": {**result["memory"], "mesh_bytes": result["mesh_bytes"]},
    }
