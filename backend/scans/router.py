"""HTTP routes of the scans workload: segmentations of a case's meshes,
their segments, downloads and the per-case summary."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.documents.meshes import MeshFormat
from backend.kit.db import tenant_scope
from backend.kit.deps import AppSettings, DbSession
from backend.kit.http import BLOB_RESPONSES, blob_response
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.kit.security.signing import DownloadUrl, signed_url, verify_link
from backend.kit.storage import get_storage
from backend.scans.models import SegmentationStatus
from backend.scans.schemas import (
    SegmentationCreate,
    SegmentationOut,
    SegmentOut,
    SegmentSummary,
    SegmentUpdate,
)
from backend.scans.segmentation import Method
from backend.scans.service import scan_service, segment_blob, segment_resource

router = APIRouter(tags=["scans"])

Reader = Annotated[Principal, require("scans:read")]
Writer = Annotated[Principal, require("scans:write")]

SEGMENTATION_SORTABLE = ["created_at", "updated_at", "status", "segment_count"]
SEGMENT_SORTABLE = ["created_at", "number", "faces", "surface_area", "label", "tooth_number"]


@router.post(
    "/cases/{case_id}/segmentations",
    status_code=202,
    response_model=SegmentationOut,
    responses={200: {"model": SegmentationOut, "description": "An identical earlier request"}},
)
async def create_segmentation(
    case_id: UUID,
    body: SegmentationCreate,
    request: Request,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> JSONResponse:
    """Segment a mesh document of the case: 202 with the segmentation and
    its `scan.segment` job. The same `Idempotency-Key` and body answer the
    first segmentation (200; another body 409 `idempotency_conflict`);
    without a key, the same document, method and parameters while a run is
    queued or running answer that run (200). The document must have been
    analysed (else 409 `not_processed`)."""
    submitted = await scan_service.create_segmentation(
        session, settings, principal, case_id, body, idempotency_key
    )
    answer = SegmentationOut.model_validate(submitted.segmentation)
    location = str(request.url_for("get_segmentation", segmentation_id=answer.id))
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=202 if submitted.created else 200,
        headers={"Location": location},
    )


@router.get(
    "/cases/{case_id}/segmentations",
    response_model=Page[SegmentationOut] | CursorPage[SegmentationOut],
)
async def list_segmentations(
    case_id: UUID,
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(SEGMENTATION_SORTABLE)],
    status: SegmentationStatus | None = None,
    method: Method | None = None,
) -> Any:
    result = await scan_service.list_segmentations(
        session,
        case_id,
        query,
        status=str(status) if status else None,
        method=str(method) if method else None,
    )
    return result.envelope([SegmentationOut.model_validate(row) for row in result.items])


@router.get("/segmentations/{segmentation_id}", response_model=SegmentationOut)
async def get_segmentation(
    segmentation_id: UUID, principal: Reader, session: DbSession
) -> SegmentationOut:
    return SegmentationOut.model_validate(
        await scan_service.get_segmentation(session, segmentation_id)
    )


@router.get("/cases/{case_id}/segments/summary", response_model=SegmentSummary)
async def get_segment_summary(
    case_id: UUID, principal: Reader, session: DbSession
) -> SegmentSummary:
    """Totals of the case's segments (volume over watertight ones) and the
    segment count of each segmentation."""
    return await scan_service.summary(session, case_id)


@router.get("/cases/{case_id}/segments", response_model=Page[SegmentOut] | CursorPage[SegmentOut])
async def list_segments(
    case_id: UUID,
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(SEGMENT_SORTABLE, default="number")],
    segmentation_id: UUID | None = None,
) -> Any:
    result = await scan_service.list_segments(session, case_id, query, segmentation_id)
    return result.envelope(await scan_service.segments_out(session, result.items))


def _segment_answer(response: Response, segment: SegmentOut) -> SegmentOut:
    response.headers["ETag"] = f'W/"{segment.version}"'
    return segment


@router.get("/segments/{segment_id}", response_model=SegmentOut)
async def get_segment(
    segment_id: UUID, response: Response, principal: Reader, session: DbSession
) -> SegmentOut:
    segment = await scan_service.get_segment(session, segment_id)
    (answer,) = await scan_service.segments_out(session, [segment])
    return _segment_answer(response, answer)


@router.patch("/segments/{segment_id}", response_model=SegmentOut, responses={412: {}})
async def update_segment(
    segment_id: UUID,
    body: SegmentUpdate,
    request: Request,
    response: Response,
    principal: Writer,
    session: DbSession,
) -> SegmentOut:
    """Set `label` and/or `tooth_number` (FDI: quadrant 1-4, tooth 1-8, so
    11-18, 21-28, 31-38, 41-48; null clears). The fields set are listed in
    `edited_fields`. `If-Match` with a stale `ETag` → 412."""
    segment = await scan_service.update_segment(
        session, principal, segment_id, body, if_match=request.headers.get("if-match")
    )
    (answer,) = await scan_service.segments_out(session, [segment])
    return _segment_answer(response, answer)


async def _file_response(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    segment_id: UUID,
    format: MeshFormat,
) -> Response:
    segment, file = await scan_service.segment_file(session, settings, segment_id, format)
    return blob_response(request, get_storage(settings), segment_blob(segment, file))


@router.get(
    "/segments/{segment_id}/download/{format}",
    response_class=StreamingResponse,
    responses=BLOB_RESPONSES,
)
async def download_segment(
    segment_id: UUID,
    format: MeshFormat,
    request: Request,
    principal: Reader,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    """The segment as `stl` (binary), `ply` (binary), `obj` or `glb`: a
    format not yet stored is converted now and kept. `Range`, strong `ETag`
    (the file's sha256) and `Content-Disposition` as for documents."""
    return await _file_response(request, session, settings, segment_id, format)


@router.get("/segments/{segment_id}/download-url", response_model=DownloadUrl)
async def get_segment_download_url(
    segment_id: UUID,
    request: Request,
    principal: Reader,
    session: DbSession,
    settings: AppSettings,
    format: MeshFormat = MeshFormat.stl,
) -> DownloadUrl:
    """A URL that downloads the segment in `format` without credentials
    until `expires_at`."""
    segment = await scan_service.get_segment(session, segment_id)
    base = str(request.url_for("download_segment_signed", segment_id=segment.id, format=format))
    return signed_url(settings, base, segment_resource(segment.id, format), segment.tenant_id)


@router.get(
    "/segments/{segment_id}/download/{format}/signed",
    response_class=StreamingResponse,
    responses=BLOB_RESPONSES,
)
async def download_segment_signed(
    segment_id: UUID,
    format: MeshFormat,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    tenant: Annotated[str, Query(max_length=64)],
    expires: Annotated[str, Query(max_length=20)],
    sig: Annotated[str, Query(max_length=128)],
) -> Response:
    """A signed link from `download-url` (no credentials): 403 when tampered
    with or expired, 404 once the segment is gone."""
    tenant_id = verify_link(settings, segment_resource(segment_id, format), tenant, expires, sig)
    with tenant_scope(tenant_id):
        return await _file_response(request, session, settings, segment_id, format)
