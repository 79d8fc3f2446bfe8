"""`/api/v1/marking`: guides (JSON or imported), printable sheets, sheets
marked by `marking.mark`, overrides and reviews, reports, batches."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.kit.body_limit import STREAMED_BODY
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import PayloadTooLarge, ValidationFailed
from backend.kit.multipart import MultipartReader
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.kit.storage import get_storage
from backend.marking import omr
from backend.marking.models import SheetStatus
from backend.marking.schemas import (
    BatchCreate,
    BatchCreated,
    BatchOut,
    BatchSummary,
    GuideCreate,
    GuideOut,
    GuideUpdate,
    MarkOverride,
    ReportFormat,
    SheetCreate,
    SheetOut,
)
from backend.marking.service import (
    batch_service,
    guide_service,
    report_html,
    report_pdf,
    sheet_service,
)
from backend.settings import Settings

router = APIRouter(prefix="/marking", tags=["marking"])

Reader = Annotated[Principal, require("marking:read")]
Writer = Annotated[Principal, require("marking:write")]

GUIDE_SORT = ["created_at", "updated_at", "title"]
SHEET_SORT = ["created_at", "updated_at", "student_id", "status"]


def _download(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "ETag": '"' + hashlib.sha256(content).hexdigest()[:32] + '"',
        },
    )


# ------------------------------------------------------------------ guides


@router.post("/guides", status_code=201, response_model=GuideOut)
async def create_guide(
    body: GuideCreate, request: Request, response: Response, principal: Writer, session: DbSession
) -> GuideOut:
    """A guide from JSON; `validation.warnings` lists doubtful but valid parts."""
    guide = await guide_service.create(session, principal, body)
    response.headers["Location"] = str(request.url_for("get_guide", guide_id=guide.id))
    return GuideOut.model_validate(guide)


@router.post(
    "/guides/import",
    status_code=201,
    response_model=GuideOut,
    max_body_size=STREAMED_BODY,  # the reader enforces MARKING_IMPORT_MAX_BYTES
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "title": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def import_guide(
    request: Request,
    response: Response,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> GuideOut:
    """A guide from the plain-text format (text, Markdown, DOCX or a PDF with a
    text layer). 422 lists every bad line: `errors[].line`."""
    limit = settings.marking_import_max_bytes
    reader = MultipartReader(request, max_body_bytes=limit + 64 * 1024)
    content: bytes | None = None
    filename: str | None = None
    title: str | None = None
    async for part in reader.parts():
        if part.name == "file" and content is None:
            chunks = bytearray()
            async for chunk in part.stream():
                chunks.extend(chunk)
                if len(chunks) > limit:
                    raise PayloadTooLarge(f"A guide file may be at most {limit} bytes")
            content, filename = bytes(chunks), part.filename
        elif part.name == "title":
            title = (await part.read_text(500)).strip() or None
        else:
            await part.skip()
    if content is None:
        raise ValidationFailed(
            "A file is required",
            errors=[{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}],
        )
    guide = await guide_service.import_file(session, settings, principal, content, filename, title)
    response.headers["Location"] = str(request.url_for("get_guide", guide_id=guide.id))
    return GuideOut.model_validate(guide)


@router.get("/guides", response_model=Page[GuideOut] | CursorPage[GuideOut])
async def list_guides(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(GUIDE_SORT)],
    subject: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Title or subject contains")
    ] = None,
) -> Any:
    result = await guide_service.list_guides(session, query, subject=subject, q=q)
    return result.envelope([GuideOut.model_validate(row) for row in result.items])


@router.get("/guides/{guide_id}", response_model=GuideOut)
async def get_guide(guide_id: UUID, principal: Reader, session: DbSession) -> GuideOut:
    return GuideOut.model_validate(await guide_service.get(session, guide_id))


@router.patch("/guides/{guide_id}", response_model=GuideOut)
async def update_guide(
    guide_id: UUID, body: GuideUpdate, principal: Writer, session: DbSession
) -> GuideOut:
    """Questions may change only while no sheet was marked with the guide
    (else 409 `guide_in_use`); title, subject and the rest always."""
    return GuideOut.model_validate(await guide_service.update(session, principal, guide_id, body))


@router.delete("/guides/{guide_id}", status_code=204)
async def delete_guide(guide_id: UUID, principal: Writer, session: DbSession) -> Response:
    await guide_service.delete(session, principal, guide_id)
    return Response(status_code=204)


@router.post("/guides/{guide_id}/restore", response_model=GuideOut)
async def restore_guide(guide_id: UUID, principal: Writer, session: DbSession) -> GuideOut:
    return GuideOut.model_validate(await guide_service.restore(session, principal, guide_id))


@router.get(
    "/guides/{guide_id}/sheet.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_guide_sheet_pdf(
    guide_id: UUID,
    principal: Reader,
    session: DbSession,
    student_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Printed in the header")
    ] = None,
) -> Response:
    """The printable A4 answer sheet (vector PDF); `sheet.json` gives every
    mark's coordinates."""
    guide, pdf = await guide_service.sheet_pdf(session, guide_id, student_id)
    return _download(pdf, "application/pdf", f"answer-sheet-{guide.id}.pdf")


@router.get("/guides/{guide_id}/sheet.json")
async def get_guide_sheet_json(
    guide_id: UUID, principal: Reader, session: DbSession
) -> dict[str, Any]:
    """Where `sheet.pdf` draws every mark: points, origin top left; bubbles by
    centre and radius, fiducials and boxes by top-left corner and size."""
    return await guide_service.sheet_json(session, guide_id)


# ------------------------------------------------------------------ sheets


@router.post("/sheets", status_code=202, response_model=SheetOut)
async def create_sheet(
    body: SheetCreate,
    request: Request,
    response: Response,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> SheetOut:
    """Queue a `marking.mark` job reading the document's answers."""
    sheet = await sheet_service.create(session, settings, principal, body)
    response.headers["Location"] = str(request.url_for("get_sheet", sheet_id=sheet.id))
    return SheetOut.model_validate(sheet)


@router.get("/sheets", response_model=Page[SheetOut] | CursorPage[SheetOut])
async def list_sheets(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(SHEET_SORT)],
    guide_id: UUID | None = None,
    batch_id: UUID | None = None,
    status: SheetStatus | None = None,
    student_id: Annotated[str | None, Query(max_length=64)] = None,
    requires_review: bool | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Any:
    result = await sheet_service.list_sheets(
        session,
        query,
        guide_id=guide_id,
        batch_id=batch_id,
        status=status,
        student_id=student_id,
        requires_review=requires_review,
        created_after=created_after,
        created_before=created_before,
    )
    return result.envelope([SheetOut.model_validate(row) for row in result.items])


@router.get("/sheets/{sheet_id}", response_model=SheetOut)
async def get_sheet(sheet_id: UUID, principal: Reader, session: DbSession) -> SheetOut:
    return SheetOut.model_validate(await sheet_service.get(session, sheet_id))


@router.delete("/sheets/{sheet_id}", status_code=204)
async def delete_sheet(sheet_id: UUID, principal: Writer, session: DbSession) -> Response:
    await sheet_service.delete(session, principal, sheet_id)
    return Response(status_code=204)


@router.post("/sheets/{sheet_id}/restore", response_model=SheetOut)
async def restore_sheet(sheet_id: UUID, principal: Writer, session: DbSession) -> SheetOut:
    return SheetOut.model_validate(await sheet_service.restore(session, principal, sheet_id))


@router.patch("/sheets/{sheet_id}/questions/{question_id}", response_model=SheetOut)
async def update_sheet_question(
    sheet_id: UUID,
    question_id: str,
    body: MarkOverride,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> SheetOut:
    """A person's mark for one question (0..max_marks): the score is
    recomputed, the question shows `overridden`, and a re-mark keeps it."""
    sheet = await sheet_service.override(session, settings, principal, sheet_id, question_id, body)
    return SheetOut.model_validate(sheet)


@router.post("/sheets/{sheet_id}/review", response_model=SheetOut)
async def review_sheet(sheet_id: UUID, principal: Writer, session: DbSession) -> SheetOut:
    """A person checked the sheet: it becomes `marked`."""
    return SheetOut.model_validate(await sheet_service.review(session, principal, sheet_id))


@router.post("/sheets/{sheet_id}/remark", status_code=202, response_model=SheetOut)
async def remark_sheet(
    sheet_id: UUID, principal: Writer, session: DbSession, settings: AppSettings
) -> SheetOut:
    """Queue a new `marking.mark` (overridden marks are kept)."""
    return SheetOut.model_validate(
        await sheet_service.remark(session, settings, principal, sheet_id)
    )


@router.get(
    "/sheets/{sheet_id}/report",
    responses={200: {"content": {"application/json": {}, "text/html": {}, "application/pdf": {}}}},
)
async def get_sheet_report(
    sheet_id: UUID,
    principal: Reader,
    session: DbSession,
    format: ReportFormat = "json",
) -> Response:
    """The report to hand back: student, answers, marks, feedback, total and flags."""
    report = await sheet_service.report(session, sheet_id)
    if format == "html":
        return HTMLResponse(report_html(report))
    if format == "pdf":
        return _download(report_pdf(report), "application/pdf", f"marking-report-{sheet_id}.pdf")
    return JSONResponse(report)


# ------------------------------------------------------------------ batches


def _page_counter(settings: Settings) -> Any:
    """How many pages a scan has: the document's count once extracted, else
    read from the file (PDF pages or image frames)."""
    storage = get_storage(settings)

    async def count(document: Any) -> int:
        if document.page_count:
            return int(document.page_count)
        if document.size > settings.marking_max_sheet_bytes:
            raise PayloadTooLarge("The scan is too large to be cut into sheets")
        data = await storage.read_bytes(document.storage_key)
        return await asyncio.to_thread(omr.page_count, data)

    return count


@router.post("/batches", status_code=202, response_model=BatchCreated)
async def create_batch(
    body: BatchCreate, principal: Writer, session: DbSession, settings: AppSettings
) -> BatchCreated:
    """Many sheets of one guide: one per document, or one multi-page scan cut
    into sheets of `pages_per_sheet` pages."""
    batch, sheets = await batch_service.create(
        session, settings, principal, body, _page_counter(settings)
    )
    return BatchCreated(
        id=batch.id, guide_id=batch.guide_id, total=batch.total, sheet_ids=[s.id for s in sheets]
    )


@router.get("/batches", response_model=Page[BatchSummary] | CursorPage[BatchSummary])
async def list_batches(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at"])],
    guide_id: UUID | None = None,
) -> Any:
    result = await batch_service.list_batches(session, query, guide_id)
    return result.envelope([BatchSummary.model_validate(row) for row in result.items])


@router.get("/batches/{batch_id}", response_model=BatchOut)
async def get_batch(batch_id: UUID, principal: Reader, session: DbSession) -> BatchOut:
    """Progress by status and the statistics of the scored sheets."""
    return BatchOut.model_validate(await batch_service.summary(session, batch_id))


@router.get(
    "/batches/{batch_id}/results.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_batch_results_csv(batch_id: UUID, principal: Reader, session: DbSession) -> Response:
    filename, content = await batch_service.results_csv(session, batch_id)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
