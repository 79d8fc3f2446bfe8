"""`marking.mark`: read one sheet's answers from its document and score them.

A PDF or an image is first read as a filled answer sheet of the guide (OMR,
`omr.py`). If it is not one (no fiducials, another layout), or the document
is text, the answers come from the document's text in the line format of
`typed_answers.py`: the platform's extracted text when the document is
processed, else the text extracted here through the documents domain's
extraction functions (OCR for images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from backend.documents.content import PDF, sniff
from backend.jobs.context import JobContext
from backend.jobs.types import PermanentJobError, job_type
from backend.kit.errors import NotFound
from backend.marking import omr
from backend.marking.extraction import IMAGES, PAGE_BREAK, Unreadable, document_text
from backend.marking.scoring import QuestionResult, score_question
from backend.marking.service import MarkingWork, sheet_service
from backend.marking.typed_answers import split_answers

TIMEOUT_SECONDS = 300

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"sheet_id": {"type": "string", "format": "uuid"}},
    "required": ["sheet_id"],
    "additionalProperties": False,
}


@dataclass(slots=True)
class Outcome:
    results: list[QuestionResult]
    source: str
    student_id: str | None
    student_name: str | None


def _pages_of(text: str, work: MarkingWork) -> str:
    if work.first_page is None:
        return text
    pages = text.split(PAGE_BREAK)
    return PAGE_BREAK.join(pages[work.first_page : work.first_page + (work.page_count or 1)])


def read_answers(work: MarkingWork, data: bytes, dpi: int) -> Outcome:
    """OMR first for scans and photos, then typed answers (CPU-bound)."""
    media = sniff(data[:8192])
    unreadable: str | None = None
    if media in (PDF, *IMAGES):
        try:
            pages = omr.pages_from_bytes(
                data, dpi=dpi, first=work.first_page or 0, count=work.page_count
            )
            reading = omr.read_sheet(pages, work.layout, work.questions)
        except omr.SheetUnreadable as exc:
            unreadable = str(exc)
        else:
            results = [score_question(q, reading.responses[q.id]) for q in work.questions]
            return Outcome(results, "omr", reading.student_id, None)
    text = work.extracted_text
    if text is None:
        try:
            text = document_text(data, media, ocr=True)
        except Unreadable as exc:
            raise PermanentJobError(f"{exc} ({unreadable})" if unreadable else str(exc)) from None
    typed = split_answers(_pages_of(text, work), work.questions)
    if not typed.raw:
        reason = f" ({unreadable})" if unreadable else ""
        raise PermanentJobError(
            "Neither a filled answer sheet of this guide nor answer lines "
            f"('1. B', 'Q2: 9.8') were found{reason}"
        )
    results = [score_question(q, typed.responses[q.id]) for q in work.questions]
    return Outcome(results, "text", typed.student_id, typed.student_name)


@job_type(
    "marking.mark",
    "Read an answer sheet (a filled printed sheet by OMR, or typed answers from the "
    "document's text) and score it against its marking guide.",
    schema=SCHEMA,
    requires=("document",),
    timeout_seconds=TIMEOUT_SECONDS,
)
async def mark(ctx: JobContext) -> dict[str, Any]:
    sheet_id = UUID(str(ctx.payload["sheet_id"]))
    try:
        return await _mark(ctx, sheet_id)
    except PermanentJobError as exc:
        await _fail(ctx, sheet_id, str(exc))
        raise
    except Exception as exc:
        if ctx.job.attempt >= ctx.job.max_attempts:
            await _fail(ctx, sheet_id, f"{type(exc).__name__}: {exc}")
        raise


async def _fail(ctx: JobContext, sheet_id: UUID, message: str) -> None:
    async with ctx.transaction() as session:
        await sheet_service.fail_marking(session, sheet_id, message)


async def _mark(ctx: JobContext, sheet_id: UUID) -> dict[str, Any]:
    try:
        async with ctx.transaction() as session:
            work = await sheet_service.start_marking(session, sheet_id)
    except NotFound:
        raise PermanentJobError("The sheet's document was deleted") from None
    if work is None:
        raise PermanentJobError("The sheet was deleted")
    if work.size > ctx.settings.marking_max_sheet_bytes:
        raise PermanentJobError("The document is too large to be read as an answer sheet")
    await ctx.progress(10, "reading the document")
    data = await ctx.storage.read_bytes(work.storage_key)
    outcome = await ctx.run_blocking(read_answers, work, data, ctx.settings.marking_render_dpi)
    await ctx.progress(90, "scoring")
    async with ctx.transaction() as session:
        sheet = await sheet_service.finish_marking(
            session,
            ctx.settings,
            sheet_id,
            outcome.results,
            source=outcome.source,
            student_id=outcome.student_id,
            student_name=outcome.student_name,
        )
    if sheet is None:
        raise PermanentJobError("The sheet was deleted")
    await ctx.log(f"Marked from {outcome.source}: {sheet.score}")
    return {
        "sheet_id": str(sheet.id),
        "source": outcome.source,
        "score": sheet.score,
        "requires_review": sheet.requires_review,
    }
