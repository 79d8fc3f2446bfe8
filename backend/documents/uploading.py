"""Upload orchestration: a multipart form's parts become staged files and
metadata, then documents (one, or one per file with a result each); a staged
blob that does not become a document is discarded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor
from backend.documents.models import Document
from backend.documents.schemas import (
    BulkAnswer,
    BulkError,
    BulkResult,
    DocumentMetadata,
    DocumentOut,
)
from backend.documents.service import StagedFile, check_metadata, document_service
from backend.kit.errors import DossierError, ValidationFailed
from backend.kit.multipart import Part
from backend.settings import Settings

FIELD_LIMIT = 1024 * 1024  # bytes of one text form field
METADATA_FIELDS = ("title", "description", "tags", "case_id", "metadata")


def _metadata(fields: dict[str, str]) -> DocumentMetadata:
    values: dict[str, Any] = {}
    for name in ("title", "description", "case_id"):
        if fields.get(name):
            values[name] = fields[name]
    if "tags" in fields:
        values["tags"] = [tag for tag in fields["tags"].split(",") if tag.strip()]
    if fields.get("metadata"):
        # The user's JSON object (at most 16 KiB: 413 above).
        try:
            values["metadata"] = json.loads(fields["metadata"])
        except ValueError:
            raise ValidationFailed(
                "metadata must be a JSON object",
                errors=[{"loc": ["body", "metadata"], "msg": "invalid JSON", "type": "json"}],
            ) from None
        if isinstance(values["metadata"], dict):
            check_metadata(values["metadata"])
    try:
        return DocumentMetadata.model_validate(values)
    except ValidationError as error:
        raise ValidationFailed(
            "The form fields did not validate",
            errors=[
                {"loc": ["body", *map(str, item["loc"])], "msg": item["msg"], "type": item["type"]}
                for item in error.errors()
            ],
        ) from None


async def _stage(session: AsyncSession, settings: Settings, part: Part) -> StagedFile:
    return await document_service.stage_file(
        session,
        settings,
        source=part.stream(),
        filename=part.filename,
        claimed_type=part.content_type,
    )


def _problem(error: DossierError) -> BulkError:
    existing = error.extra.get("existing_id")
    return BulkError(
        status=error.status,
        code=error.code,
        detail=error.detail,
        existing_id=UUID(existing) if existing else None,
    )


class UploadService:
    async def upload_one(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Actor,
        parts: AsyncIterator[Part],
        *,
        allow_duplicate: bool = False,
    ) -> Document:
        """One `file` part and the metadata fields around it."""
        fields: dict[str, str] = {}
        staged: StagedFile | None = None
        try:
            async for part in parts:
                if part.name == "file" and part.is_file:
                    if staged is not None:
                        raise ValidationFailed(
                            "Send one file; use /documents/bulk for several",
                            errors=[
                                {"loc": ["body", "file"], "msg": "one file", "type": "value_error"}
                            ],
                        )
                    staged = await _stage(session, settings, part)
                elif part.name in METADATA_FIELDS:
                    fields[part.name] = await part.read_text(FIELD_LIMIT)
                else:
                    await part.skip()
            if staged is None:
                raise ValidationFailed(
                    "The form has no file",
                    errors=[{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}],
                )
            metadata = _metadata(fields)
        except BaseException:
            if staged is not None:
                await document_service.discard(session, staged)
            raise
        return await document_service.create_document(
            session, settings, principal, staged, metadata, allow_duplicate=allow_duplicate
        )

    async def upload_many(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Actor,
        parts: AsyncIterator[Part],
        *,
        allow_duplicate: bool = False,
    ) -> BulkAnswer:
        """Repeated `files` parts; each file succeeds or fails on its own."""
        limit = settings.bulk_upload_max_files
        fields: dict[str, str] = {}
        outcomes: list[tuple[str | None, StagedFile | DossierError]] = []
        try:
            async for part in parts:
                if part.name == "files" and part.is_file:
                    if len(outcomes) >= limit:
                        raise ValidationFailed(
                            f"At most {limit} files per request",
                            errors=[
                                {"loc": ["body", "files"], "msg": "too many", "type": "too_long"}
                            ],
                        )
                    try:
                        outcomes.append((part.filename, await _stage(session, settings, part)))
                    except DossierError as error:
                        if error.status == 400 and error.code == "malformed_request":
                            raise
                        await part.skip()
                        outcomes.append((part.filename, error))
                elif part.name in METADATA_FIELDS:
                    fields[part.name] = await part.read_text(FIELD_LIMIT)
                else:
                    await part.skip()
            if not outcomes:
                raise ValidationFailed(
                    "The form has no files",
                    errors=[{"loc": ["body", "files"], "msg": "Field required", "type": "missing"}],
                )
            fields.pop("title", None)
            metadata = _metadata(fields)
        except BaseException:
            for _, outcome in outcomes:
                if isinstance(outcome, StagedFile):
                    await document_service.discard(session, outcome)
            raise
        results: list[BulkResult] = []
        for index, (filename, outcome) in enumerate(outcomes):
            if isinstance(outcome, DossierError):
                results.append(
                    BulkResult(filename=filename, status=outcome.status, error=_problem(outcome))
                )
                continue
            try:
                async with session.begin_nested():
                    document = await document_service.create_document(
                        session,
                        settings,
                        principal,
                        outcome,
                        metadata,
                        allow_duplicate=allow_duplicate,
                    )
            except DossierError as error:
                results.append(
                    BulkResult(filename=filename, status=error.status, error=_problem(error))
                )
                continue
            except BaseException:
                for _, later in outcomes[index + 1 :]:
                    if isinstance(later, StagedFile):
                        await document_service.discard(session, later)
                raise
            results.append(
                BulkResult(
                    filename=filename, status=201, document=DocumentOut.model_validate(document)
                )
            )
        return BulkAnswer(results=results)


upload_service = UploadService()
