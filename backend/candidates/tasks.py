"""`cv.parse`: a CV document's text → a candidate (created, or updated when
the person is known by the document, an e-mail or a phone)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from backend.candidates.service import CV_PARSE, candidate_service
from backend.documents import tasks as document_tasks
from backend.documents.models import DocumentStatus
from backend.jobs.context import JobContext
from backend.jobs.types import PermanentJobError, job_type

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "document_id": {"type": "string", "format": "uuid"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
        "requisition_id": {"type": "string", "format": "uuid"},
    },
    "required": ["document_id"],
    "additionalProperties": False,
}


@job_type(
    CV_PARSE,
    "Parse a CV document (its extracted text) into a candidate profile: contacts, "
    "experience, education, languages and skills; create the candidate or update the one "
    "sharing an e-mail or phone.",
    schema=SCHEMA,
    requires=("document",),
    timeout_seconds=300,
)
async def parse_cv(ctx: JobContext) -> dict[str, Any]:
    document_id = ctx.job.document_id
    if document_id is None or str(document_id) != ctx.payload["document_id"]:
        raise PermanentJobError("The job's document and its payload's document_id differ")
    async with ctx.transaction() as session:
        document = await candidate_service.document_text(session, document_id)
        region = await candidate_service.region(session, ctx.settings)
        matcher = await candidate_service.matcher(session)
    if document.status != DocumentStatus.PROCESSED or document.extracted_text is None:
        # Not extracted yet (or it failed before): the documents domain's own
        # extraction, run here, stores the text on the document as its job would.
        await ctx.log("Extracting the document's text first")
        await document_tasks.extract_text.handler(ctx)
        async with ctx.transaction() as session:
            document = await candidate_service.document_text(session, document_id)
    if document.extracted_text is None:
        raise PermanentJobError("The document has no text")
    text = document.extracted_text
    # One progress step (it is also where a cancel is honoured): each costs a
    # transaction and an event, and the rest of the job is a few milliseconds.
    await ctx.progress(50, "parsing")
    parsed = await ctx.run_blocking(
        partial(candidate_service.parse, region=region, matcher=matcher, today=datetime.now(UTC)),
        text,
    )
    requisition_id = ctx.payload.get("requisition_id")
    async with ctx.transaction() as session:
        candidate, created = await candidate_service.ingest(
            session,
            document,
            parsed,
            text,
            tags=list(ctx.payload.get("tags", [])),
            requisition_id=UUID(requisition_id) if requisition_id else None,
        )
    return {
        "candidate_id": str(candidate.id),
        "created": created,
        "name": parsed.name,
        "skills": len(parsed.skills),
        "experience": len(parsed.experience),
        "sections": parsed.sections,
    }
