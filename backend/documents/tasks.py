"""Job types of documents: `document.extract_text` (text layers, OCR of
scanned pages and images, per-page results, language, confidence) and
`document.extract_fields` (classification and fields), queued after each
successful extraction unless the tenant's `auto_extract_fields` is off."""

from __future__ import annotations

from typing import Any

from backend.documents.intelligence.extract import (
    OcrMode,
)
from backend.documents.intelligence.fields import extract_fields as read_fields
from backend.documents.intelligence.ocr import OcrFailed, OcrUnavailable
from backend.documents.intelligence.pages import UnreadableDocument
from backend.documents.models import DocumentStatus
from backend.documents.service import NotProcessed, document_service
from backend.jobs.context import JobContext
from backend.jobs.service import job_service
from backend.jobs.types import PermanentJobError, job_type
from backend.kit.errors import NotFound

EXTRACT_TEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ocr": {
            "enum": ["auto", "always", "never"],
            "default": "auto",
            "description": "auto: OCR PDF pages with too little text (OCR_MIN_PAGE_CHARS) "
            "and images; always: every page; never: text layers only",
        },
        "languages": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z]{3}(_[a-z]{3,4})?$"},
            "minItems": 1,
            "maxItems": 5,
            "description": "Tesseract languages; default: the tenant's `ocr_languages` "
            '(default ["eng", "deu"])',
        },
    },
    "additionalProperties": False,
}
EXTRACT_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "document_type": {
            "enum": ["invoice", "receipt", "delivery_note", "contract", "cv", "other"],
            "description": "Skip classification and read the fields of this type",
        }
    },
    "additionalProperties": False,
}


@job_type(
    "document.extract_text",
    "Extract a document's text: PDF text layers, Tesseract OCR of scanned pages and images "
    "(PNG, JPEG, multi-page TIFF), DOCX and plain text; per-page method, confidence and "
    "language; the document becomes searchable in its language.",
    schema=EXTRACT_TEXT_SCHEMA,
    requires=("document",),
)
async def extract_text(ctx: JobContext) -> dict[str, Any]:
    try:
        return await _extract_text(ctx)
    except PermanentJobError:
        await _failed(ctx)
        raise
    except Exception:
        if ctx.job.attempt >= ctx.job.max_attempts:
            await _failed(ctx)
        raise


async def _failed(ctx: JobContext) -> None:
    assert ctx.job.document_id is not None
    async with ctx.transaction() as session:
        await document_service.set_status(session, ctx.job.document_id, DocumentStatus.FAILED)


async def _extract_text(ctx: JobContext) -> dict[str, Any]:
    document_id = ctx.job.document_id
    assert document_id is not None
    async with ctx.transaction() as session:
        try:
            document = await document_service.get(session, document_id)
        except NotFound:
            raise PermanentJobError("The document no longer exists") from None
        reading = await document_service.tenant_reading(session)
        await document_service.set_status(session, document_id, DocumentStatus.PROCESSING)
        storage_key, mime_type = document.storage_key, document.mime_type
    ocr: OcrMode = ctx.payload.get("ocr", "auto")
    languages = list(ctx.payload.get("languages") or reading.ocr_languages)
    await ctx.progress(5, "downloading")

    async def on_page(done: int, total: int, method: str) -> None:
        await ctx.progress(5 + 90 * done / max(total, 1), f"page {done} of {total} ({method})")

    try:
        result = await document_service.extract_file(
            ctx.settings,
            storage_key,
            mime_type,
            ocr=ocr,
            languages=languages,
            min_page_chars=ctx.settings.ocr_min_page_chars,
            run_blocking=ctx.run_blocking,
            on_page=on_page,
        )
    except (OcrUnavailable, UnreadableDocument, OcrFailed) as error:
        raise PermanentJobError(str(error)) from None
    async with ctx.transaction() as session:
        stored = await document_service.store_extraction(session, document_id, result)
        if stored is None:
            raise PermanentJobError("The document was deleted during extraction")
        fields_job = None
        if reading.auto_extract_fields:
            job = await job_service.enqueue(
                session,
                "document.extract_fields",
                {},
                document_id=document_id,
                max_attempts=ctx.settings.job_default_max_attempts,
                created_by=ctx.job.created_by,
            )
            fields_job = str(job.id)
    await ctx.log(
        f"Read a {result.kind} file: {len(result.text)} characters from "
        f"{result.page_count} page(s) "
        f"({result.ocr_pages} by OCR); language {result.language}"
    )
    return {
        "page_count": result.page_count,
        "language": result.language,
        "characters": len(result.text),
        "confidence": result.confidence,
        "ocr_pages": result.ocr_pages,
        "kind": result.kind,
        "extract_fields_job_id": fields_job,
    }


@job_type(
    "document.extract_fields",
    "Classify a processed document (invoice, receipt, delivery note, contract, CV, other) "
    "and read its fields in English or German; a person's corrections are kept.",
    schema=EXTRACT_FIELDS_SCHEMA,
    requires=("document",),
)
async def extract_fields(ctx: JobContext) -> dict[str, Any]:
    document_id = ctx.job.document_id
    assert document_id is not None
    async with ctx.transaction() as session:
        try:
            extracted = await document_service.read_text(session, document_id)
        except NotFound:
            raise PermanentJobError("The document no longer exists") from None
        except NotProcessed:
            raise PermanentJobError("The document's text has not been extracted") from None
    await ctx.progress(30, "classifying")
    fields = await ctx.run_blocking(
        _read, extracted.text, extracted.language, ctx.payload.get("document_type"),
        extracted.confidence,
    )  # fmt: skip
    async with ctx.transaction() as session:
        document, written = await document_service.store_fields(session, document_id, fields)
        if document is None:
            raise PermanentJobError("The document was deleted")
    if not written:
        await ctx.log("Fields were corrected by a person: kept as they are")
    return {
        "document_type": fields.document_type,
        "fields": sorted(fields.data),
        "written": written,
    }


def _read(
    text: str, language: str | None, document_type: str | None, confidence: float | None
) -> Any:
    return read_fields(text, language, document_type=document_type, text_confidence=confidence)
