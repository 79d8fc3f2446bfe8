"""The rules of marking: guides (checked, versioned by use), sheets (queued
for `marking.mark`, scored, overridden, reviewed, re-marked), batches (many
sheets, statistics, CSV) and reports."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor, audit_service
from backend.audit.soft_delete import SoftDeletion
from backend.documents.content import DOCX, PDF, sniff
from backend.documents.models import Document
from backend.documents.service import document_service
from backend.jobs.service import job_service
from backend.kit.errors import (
    Conflict,
    DossierError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from backend.kit.events import emit
from backend.kit.http import TEXT
from backend.kit.pagination import ListQuery, PageResult
from backend.marking import guide_import, reports, statistics
from backend.marking.extraction import document_text
from backend.marking.guide import Question, total_marks, warnings
from backend.marking.models import (
    FINISHED,
    SCORED,
    MarkingBatch,
    MarkingGuide,
    MarkingSheet,
    SheetStatus,
)
from backend.marking.repository import (
    BatchRepository,
    GuideRepository,
    SheetRepository,
    purge_deleted_before,
)
from backend.marking.schemas import BatchCreate, GuideCreate, GuideUpdate, MarkOverride, SheetCreate
from backend.marking.scoring import QuestionResult, qa_counts, requires_review, total
from backend.marking.sheet_layout import SheetLayout, compute_layout
from backend.marking.sheet_pdf import render_sheet
from backend.settings import Settings

MARK_JOB = "marking.mark"
IMPORT_TYPES = (PDF, DOCX, TEXT)


class GuideInUse(DossierError):
    status, code = 409, "guide_in_use"


def _field_error(loc: list[str | int], message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": loc, "msg": message, "type": "value_error"}])


def guide_questions(guide: MarkingGuide) -> list[Question]:
    return [Question.model_validate(item) for item in guide.questions]


def _guide_values(questions: list[Question], pass_percentage: float) -> dict[str, Any]:
    try:
        compute_layout(questions, title="check")
    except ValueError as exc:
        raise _field_error(["body", "questions"], f"The sheet cannot be printed: {exc}") from None
    return {
        "questions": [q.model_dump(mode="json", exclude_none=True) for q in questions],
        "total_marks": total_marks(questions),
        "question_count": len(questions),
        "warnings": warnings(questions, pass_percentage),
    }


def sheet_event(sheet: MarkingSheet) -> dict[str, Any]:
    return {
        "sheet_id": str(sheet.id),
        "guide_id": str(sheet.guide_id),
        "batch_id": str(sheet.batch_id) if sheet.batch_id else None,
        "student_id": sheet.student_id,
        "score": sheet.score,
        "requires_review": sheet.requires_review,
    }


def results_of(sheet: MarkingSheet) -> list[QuestionResult]:
    return [QuestionResult(**item) for item in sheet.questions]


def apply_results(
    sheet: MarkingSheet, guide: MarkingGuide, results: list[QuestionResult], review: float
) -> None:
    """Score, flags counts, review need and status from the question marks."""
    sheet.questions = [result.as_dict() for result in results]
    sheet.score = total(results, guide.pass_percentage).as_dict()
    sheet.qa = qa_counts(results, review)
    sheet.requires_review = requires_review(results, review)
    sheet.status = SheetStatus.NEEDS_REVIEW if sheet.requires_review else SheetStatus.MARKED


@dataclass(slots=True)
class MarkingWork:
    """What the `marking.mark` job needs, read in one transaction."""

    sheet_id: UUID
    questions: list[Question]
    layout: SheetLayout
    storage_key: str
    mime_type: str
    size: int
    extracted_text: str | None
    first_page: int | None
    page_count: int | None


GUIDE_DELETION = SoftDeletion(
    GuideRepository, "marking_guide", "marking.guide_deleted", "marking.guide_restored"
)
SHEET_DELETION = SoftDeletion(
    SheetRepository, "marking_sheet", "marking.sheet_deleted", "marking.sheet_restored"
)


class GuideService:
    async def create(self, session: AsyncSession, actor: Actor, data: GuideCreate) -> MarkingGuide:
        guide = await GuideRepository(session).create(
            title=data.title,
            subject=data.subject,
            instructions=data.instructions,
            pass_percentage=data.pass_percentage,
            student_id_digits=data.student_id_digits,
            created_by=actor.id,
            **_guide_values(data.questions, data.pass_percentage),
        )
        await audit_service.record(
            session,
            actor,
            "marking.guide_created",
            "marking_guide",
            guide.id,
            {"title": guide.title, "question_count": guide.question_count},
        )
        return guide

    async def import_file(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        content: bytes,
        filename: str | None,
        title: str | None,
    ) -> MarkingGuide:
        """A guide from the plain-text format in a text, Markdown, DOCX or
        text-PDF file; 422 listing every bad line by number."""
        if len(content) > settings.marking_import_max_bytes:
            raise PayloadTooLarge(
                f"A guide file may be at most {settings.marking_import_max_bytes} bytes"
            )
        media = sniff(content[:8192])
        if media not in IMPORT_TYPES:
            raise UnsupportedMediaType("A guide is imported from text, Markdown, DOCX or PDF")
        try:
            text = await asyncio.to_thread(document_text, content, media)
        except Exception as exc:  # a damaged file of an accepted type
            raise ValidationFailed(
                "The file could not be read",
                errors=[{"loc": ["file"], "msg": str(exc)[:300], "type": "unreadable"}],
            ) from None
        parsed = guide_import.parse_guide(text)
        if parsed.errors:
            raise ValidationFailed(
                f"{len(parsed.errors)} line(s) of the guide file are invalid", errors=parsed.errors
            )
        fields = parsed.fields()
        fallback = (filename or "").rsplit(".", 1)[0].strip() or "Imported guide"
        fields["title"] = title or fields.get("title") or fallback[:500]
        try:
            data = GuideCreate.model_validate(fields)
        except ValidationError as exc:
            raise ValidationFailed(
                "The guide is invalid",
                errors=[
                    {"loc": ["file", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ],
            ) from None
        return await self.create(session, actor, data)

    async def get(
        self, session: AsyncSession, guide_id: UUID, *, include_deleted: bool = False
    ) -> MarkingGuide:
        return await GuideRepository(session).get_or_raise(
            guide_id, include_deleted=include_deleted
        )

    async def list_guides(
        self, session: AsyncSession, query: ListQuery, **filters: Any
    ) -> PageResult[MarkingGuide]:
        repository = GuideRepository(session)
        return await repository.paginate(repository.filtered(**filters), query)

    async def update(
        self, session: AsyncSession, actor: Actor, guide_id: UUID, data: GuideUpdate
    ) -> MarkingGuide:
        repository = GuideRepository(session)
        guide = await repository.get_or_raise(guide_id)
        values = data.model_dump(exclude_unset=True, exclude={"questions"})
        for field in ("title", "pass_percentage", "student_id_digits"):
            if field in values and values[field] is None:
                raise _field_error(["body", field], f"{field} cannot be null")
        pass_percentage = values.get("pass_percentage", guide.pass_percentage)
        if data.questions is not None:
            if await repository.has_scored_sheets(guide.id):
                raise GuideInUse(
                    "Sheets were marked with this guide: its questions cannot change "
                    "(create a new guide instead)"
                )
            values.update(_guide_values(data.questions, pass_percentage))
        elif "pass_percentage" in values:
            values["warnings"] = warnings(guide_questions(guide), pass_percentage)
        changes = await repository.update(guide, values)
        if changes:
            await audit_service.record(
                session,
                actor,
                "marking.guide_updated",
                "marking_guide",
                guide.id,
                {name: change for name, change in changes.items() if name != "questions"}
                | ({"questions": "changed"} if "questions" in changes else {}),
            )
        return guide

    async def delete(self, session: AsyncSession, actor: Actor, guide_id: UUID) -> None:
        await GUIDE_DELETION.delete(session, actor, guide_id)

    async def restore(self, session: AsyncSession, actor: Actor, guide_id: UUID) -> MarkingGuide:
        guide, _ = await GUIDE_DELETION.restore(session, actor, guide_id)
        return guide

    def layout(self, guide: MarkingGuide, student_id: str | None = None) -> SheetLayout:
        return compute_layout(
            guide_questions(guide),
            title=guide.title,
            subject=guide.subject,
            student_id_digits=guide.student_id_digits,
            student_id=student_id,
        )

    async def sheet_pdf(
        self, session: AsyncSession, guide_id: UUID, student_id: str | None
    ) -> tuple[MarkingGuide, bytes]:
        guide = await self.get(session, guide_id)
        return guide, render_sheet(self.layout(guide, student_id), title=guide.title)

    async def sheet_json(self, session: AsyncSession, guide_id: UUID) -> dict[str, Any]:
        guide = await self.get(session, guide_id)
        return {"guide_id": str(guide.id), **self.layout(guide).as_json()}


guide_service = GuideService()


class SheetService:
    async def _guide_for(self, session: AsyncSession, guide_id: UUID) -> MarkingGuide:
        guide = await GuideRepository(session).get(guide_id)
        if guide is None:
            raise _field_error(["body", "guide_id"], "No such marking guide in this tenant")
        return guide

    async def _document_for(
        self, session: AsyncSession, document_id: UUID, loc: list[str | int]
    ) -> Document:
        try:
            return await document_service.get(session, document_id)
        except NotFound:
            raise _field_error(loc, "No such document in this tenant") from None

    async def _queue(
        self, session: AsyncSession, settings: Settings, actor: Actor, sheet: MarkingSheet
    ) -> None:
        job = await job_service.enqueue(
            session,
            MARK_JOB,
            {"sheet_id": str(sheet.id)},
            document_id=sheet.document_id,
            priority=sheet.priority,
            max_attempts=settings.job_default_max_attempts,
            created_by=actor.id,
        )
        sheet.job_id = job.id
        sheet.status = SheetStatus.QUEUED
        sheet.error = None
        await session.flush()

    async def _new_sheet(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        guide: MarkingGuide,
        document: Document,
        **values: Any,
    ) -> MarkingSheet:
        sheet = await SheetRepository(session).create(
            guide_id=guide.id,
            document_id=document.id,
            status=SheetStatus.QUEUED,
            student_id_given=values.get("student_id") is not None,
            questions=[],
            requires_review=False,
            created_by=actor.id,
            **values,
        )
        await self._queue(session, settings, actor, sheet)
        return sheet

    async def create(
        self, session: AsyncSession, settings: Settings, actor: Actor, data: SheetCreate
    ) -> MarkingSheet:
        guide = await self._guide_for(session, data.guide_id)
        document = await self._document_for(session, data.document_id, ["body", "document_id"])
        sheet = await self._new_sheet(
            session,
            settings,
            actor,
            guide,
            document,
            student_id=data.student_id,
            student_name=data.student_name,
            priority=data.priority,
        )
        await audit_service.record(
            session,
            actor,
            "marking.sheet_created",
            "marking_sheet",
            sheet.id,
            {"guide_id": str(guide.id), "document_id": str(document.id)},
        )
        return sheet

    async def get(
        self, session: AsyncSession, sheet_id: UUID, *, include_deleted: bool = False
    ) -> MarkingSheet:
        return await SheetRepository(session).get_or_raise(
            sheet_id, include_deleted=include_deleted
        )

    async def list_sheets(
        self, session: AsyncSession, query: ListQuery, **filters: Any
    ) -> PageResult[MarkingSheet]:
        repository = SheetRepository(session)
        return await repository.paginate(repository.filtered(**filters), query)

    async def delete(self, session: AsyncSession, actor: Actor, sheet_id: UUID) -> None:
        await SHEET_DELETION.delete(session, actor, sheet_id)

    async def restore(self, session: AsyncSession, actor: Actor, sheet_id: UUID) -> MarkingSheet:
        sheet, _ = await SHEET_DELETION.restore(session, actor, sheet_id)
        return sheet

    async def _scored(self, session: AsyncSession, sheet_id: UUID) -> MarkingSheet:
        sheet = await SheetRepository(session).get_or_raise(sheet_id)
        if sheet.status not in SCORED:
            raise Conflict(f"The sheet is {sheet.status}, not marked")
        return sheet

    async def override(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        sheet_id: UUID,
        question_id: str,
        data: MarkOverride,
    ) -> MarkingSheet:
        """A person's mark for one question: kept through re-marks, audited."""
        sheet = await self._scored(session, sheet_id)
        guide = await guide_service.get(session, sheet.guide_id, include_deleted=True)
        results = results_of(sheet)
        target = next((result for result in results if result.id == question_id), None)
        if target is None:
            raise NotFound("No such question on this sheet")
        if data.awarded > target.max_marks:
            raise _field_error(
                ["body", "awarded"], f"awarded must be between 0 and {target.max_marks:g}"
            )
        before = {"awarded": target.awarded, "feedback": target.feedback}
        target.awarded = round(data.awarded, 4)
        target.correct = (
            True if target.awarded >= target.max_marks else False if target.awarded == 0 else None
        )
        if data.feedback is not None:
            target.feedback = data.feedback
        target.overridden = True
        apply_results(sheet, guide, results, settings.marking_review_confidence)
        await session.flush()
        await audit_service.record(
            session,
            actor,
            "marking.mark_overridden",
            "marking_sheet",
            sheet.id,
            {
                "question_id": question_id,
                "awarded": {"before": before["awarded"], "after": target.awarded},
                "feedback": {"before": before["feedback"], "after": target.feedback},
            },
        )
        return sheet

    async def review(self, session: AsyncSession, actor: Actor, sheet_id: UUID) -> MarkingSheet:
        sheet = await self._scored(session, sheet_id)
        sheet.status = SheetStatus.MARKED
        sheet.requires_review = False
        sheet.reviewed_at = datetime.now(UTC)
        await session.flush()
        await audit_service.record(
            session, actor, "marking.sheet_reviewed", "marking_sheet", sheet.id
        )
        return sheet

    async def remark(
        self, session: AsyncSession, settings: Settings, actor: Actor, sheet_id: UUID
    ) -> MarkingSheet:
        sheet = await SheetRepository(session).get_or_raise(sheet_id)
        if sheet.status in (SheetStatus.QUEUED, SheetStatus.MARKING):
            raise Conflict(f"The sheet is already {sheet.status}")
        await guide_service.get(session, sheet.guide_id)
        await self._queue(session, settings, actor, sheet)
        await audit_service.record(
            session, actor, "marking.sheet_remarked", "marking_sheet", sheet.id
        )
        return sheet

    async def report(self, session: AsyncSession, sheet_id: UUID) -> dict[str, Any]:
        sheet = await self._scored(session, sheet_id)
        guide = await guide_service.get(session, sheet.guide_id, include_deleted=True)
        return {
            "sheet_id": str(sheet.id),
            "guide": {"id": str(guide.id), "title": guide.title, "subject": guide.subject},
            "student_id": sheet.student_id,
            "student_name": sheet.student_name,
            "score": sheet.score,
            "requires_review": sheet.requires_review,
            "qa": sheet.qa,
            "questions": sheet.questions,
            "marked_at": sheet.marked_at.isoformat() if sheet.marked_at else None,
        }

    # ------------------------------------------------------------ the job's side

    async def start_marking(self, session: AsyncSession, sheet_id: UUID) -> MarkingWork | None:
        """Move the sheet to `marking` (None if it was deleted meanwhile)."""
        sheet = await SheetRepository(session).lock(sheet_id)
        if sheet is None or sheet.deleted_at is not None:
            return None
        guide = await guide_service.get(session, sheet.guide_id, include_deleted=True)
        document = await document_service.get(session, sheet.document_id)
        await session.refresh(document, ["extracted_text"])
        processed = str(document.status) == "processed"
        sheet.status = SheetStatus.MARKING
        await session.flush()
        emit(session, "marking.started", sheet_event(sheet))
        return MarkingWork(
            sheet_id=sheet.id,
            questions=guide_questions(guide),
            layout=guide_service.layout(guide),
            storage_key=document.storage_key,
            mime_type=document.mime_type,
            size=document.size,
            extracted_text=document.extracted_text if processed else None,
            first_page=sheet.first_page,
            page_count=sheet.page_count,
        )

    async def finish_marking(
        self,
        session: AsyncSession,
        settings: Settings,
        sheet_id: UUID,
        results: list[QuestionResult],
        *,
        source: str,
        student_id: str | None,
        student_name: str | None,
    ) -> MarkingSheet | None:
        sheet = await SheetRepository(session).lock(sheet_id)
        if sheet is None or sheet.deleted_at is not None:
            return None
        guide = await guide_service.get(session, sheet.guide_id, include_deleted=True)
        # A person's override survives a re-mark.
        kept = {item["id"]: item for item in sheet.questions if item.get("overridden")}
        merged = [
            QuestionResult(**kept[result.id]) if result.id in kept else result for result in results
        ]
        apply_results(sheet, guide, merged, settings.marking_review_confidence)
        sheet.source = source
        if not sheet.student_id_given:
            sheet.student_id = student_id
        if student_name and not sheet.student_name:
            sheet.student_name = student_name[:200]
        if sheet.student_id is None and not sheet.student_id_given:
            sheet.requires_review = True
            sheet.status = SheetStatus.NEEDS_REVIEW
        sheet.marked_at = datetime.now(UTC)
        sheet.reviewed_at = None
        sheet.error = None
        await session.flush()
        emit(session, "marking.completed", sheet_event(sheet))
        await batch_service.check_done(session, sheet)
        return sheet

    async def fail_marking(self, session: AsyncSession, sheet_id: UUID, message: str) -> None:
        sheet = await SheetRepository(session).lock(sheet_id)
        if sheet is None or sheet.deleted_at is not None:
            return
        sheet.status = SheetStatus.FAILED
        sheet.error = message[:2000]
        await session.flush()
        emit(session, "marking.failed", {**sheet_event(sheet), "error": sheet.error})
        await batch_service.check_done(session, sheet)


sheet_service = SheetService()


class BatchService:
    async def create(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        data: BatchCreate,
        page_counter: Any,
    ) -> tuple[MarkingBatch, list[MarkingSheet]]:
        """`page_counter(document)`: the document's page count (awaitable)."""
        guide = await sheet_service._guide_for(session, data.guide_id)
        plans: list[tuple[Document, int | None, int | None]] = []
        if data.document_ids is not None:
            for index, document_id in enumerate(data.document_ids):
                document = await sheet_service._document_for(
                    session, document_id, ["body", "document_ids", index]
                )
                plans.append((document, None, None))
        else:
            assert data.document_id is not None
            document = await sheet_service._document_for(
                session, data.document_id, ["body", "document_id"]
            )
            pages = int(await page_counter(document))
            if pages < data.pages_per_sheet or pages % data.pages_per_sheet:
                raise _field_error(
                    ["body", "pages_per_sheet"],
                    f"The document has {pages} page(s): not a whole number of "
                    f"{data.pages_per_sheet}-page sheets",
                )
            count = pages // data.pages_per_sheet
            if count > settings.marking_batch_max_sheets:
                raise _field_error(
                    ["body", "document_id"],
                    f"At most {settings.marking_batch_max_sheets} sheets per batch",
                )
            plans = [
                (document, index * data.pages_per_sheet, data.pages_per_sheet)
                for index in range(count)
            ]
        batch = await BatchRepository(session).create(
            guide_id=guide.id,
            document_id=data.document_id,
            pages_per_sheet=data.pages_per_sheet if data.document_id else None,
            total=len(plans),
            created_by=actor.id,
        )
        sheets = []
        for document, first_page, page_count in plans:
            sheets.append(
                await sheet_service._new_sheet(
                    session,
                    settings,
                    actor,
                    guide,
                    document,
                    batch_id=batch.id,
                    first_page=first_page,
                    page_count=page_count,
                    priority=data.priority,
                )
            )
        await audit_service.record(
            session,
            actor,
            "marking.batch_created",
            "marking_batch",
            batch.id,
            {"guide_id": str(guide.id), "total": batch.total},
        )
        return batch, sheets

    async def get(self, session: AsyncSession, batch_id: UUID) -> MarkingBatch:
        return await BatchRepository(session).get_or_raise(batch_id)

    async def list_batches(
        self, session: AsyncSession, query: ListQuery, guide_id: UUID | None = None
    ) -> PageResult[MarkingBatch]:
        repository = BatchRepository(session)
        stmt = repository.select()
        if guide_id is not None:
            stmt = stmt.where(MarkingBatch.guide_id == guide_id)
        return await repository.paginate(stmt, query)

    async def summary(self, session: AsyncSession, batch_id: UUID) -> dict[str, Any]:
        batch = await self.get(session, batch_id)
        guide = await guide_service.get(session, batch.guide_id, include_deleted=True)
        sheets = await SheetRepository(session).in_batch(batch.id)
        by_status = {status.value: 0 for status in SheetStatus}
        for sheet in sheets:
            by_status[str(sheet.status)] += 1
        scored = [sheet for sheet in sheets if sheet.status in SCORED and sheet.score]
        questions = guide_questions(guide)
        stats = statistics.batch_statistics(
            [sheet.score for sheet in scored if sheet.score],
            [{item["id"]: item["awarded"] for item in sheet.questions} for sheet in scored],
            [q.id for q in questions],
            {q.id: q.max_marks for q in questions},
        )
        return {
            "id": batch.id,
            "guide_id": batch.guide_id,
            "document_id": batch.document_id,
            "pages_per_sheet": batch.pages_per_sheet,
            "total": batch.total,
            "by_status": by_status,
            "done": all(sheet.status in FINISHED for sheet in sheets),
            "completed_at": batch.completed_at,
            "statistics": stats,
            "created_at": batch.created_at,
        }

    async def results_csv(self, session: AsyncSession, batch_id: UUID) -> tuple[str, str]:
        """(file name, CSV): one row per sheet, one column per question."""
        batch = await self.get(session, batch_id)
        guide = await guide_service.get(session, batch.guide_id, include_deleted=True)
        ids = [q.id for q in guide_questions(guide)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(
            [
                "sheet_id",
                "student_id",
                "student_name",
                "status",
                "awarded",
                "max",
                "percentage",
                "passed",
                "requires_review",
                *(f"q_{question_id}" for question_id in ids),
            ]
        )
        for sheet in await SheetRepository(session).in_batch(batch.id):
            marks = {item["id"]: item["awarded"] for item in sheet.questions}
            score = sheet.score or {}
            writer.writerow(
                [
                    sheet.id,
                    _cell(sheet.student_id),
                    _cell(sheet.student_name),
                    sheet.status,
                    score.get("awarded", ""),
                    score.get("max", ""),
                    score.get("percentage", ""),
                    score.get("passed", ""),
                    sheet.requires_review if sheet.score else "",
                    *(marks.get(question_id, "") for question_id in ids),
                ]
            )
        return f"marking-batch-{batch.id}.csv", buffer.getvalue()

    async def check_done(self, session: AsyncSession, sheet: MarkingSheet) -> None:
        """Emit `marking.batch_completed` once, when the batch's last sheet
        finishes (the batch row lock orders simultaneous finishers)."""
        if sheet.batch_id is None:
            return
        repository = BatchRepository(session)
        batch = await repository.lock(sheet.batch_id)
        if batch is None or batch.completed_at is not None:
            return
        if await repository.unfinished(batch.id):
            return
        batch.completed_at = datetime.now(UTC)
        await session.flush()
        counts = await SheetRepository(session).status_counts(batch.id)
        emit(
            session,
            "marking.batch_completed",
            {
                "batch_id": str(batch.id),
                "guide_id": str(batch.guide_id),
                "total": batch.total,
                "by_status": counts,
            },
        )


def _cell(value: str | None) -> str:
    """CSV cells that a spreadsheet would run as a formula are quoted with '."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


batch_service = BatchService()


async def purge_marking(session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
    """Admin purge: guides and sheets soft-deleted before `cutoff` (the rows
    of purged tenants go with them by cascade; marking keeps no blobs)."""
    return await purge_deleted_before(session, cutoff)


report_html = reports.render_html
report_pdf = reports.render_pdf
