"""Business rules of documents: streaming an upload into storage with its
checks (size, type, emptiness, quota, duplicates), reading, changing,
deleting, restoring, purging and signing download URLs.

An upload is two steps so that a direct upload and a completed resumable
upload share one path: `stage_file` streams the bytes to a staged blob while
hashing and type-checking them; `create_document` validates the metadata,
applies the duplicate and quota rules, writes the row and arranges for the
blob to become visible when the transaction commits (and to vanish if it
rolls back).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterable, Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import anyio
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.audit.service import Actor, audit_service
from backend.audit.soft_delete import SoftDeletion
from backend.documents.content import InspectedStream, sanitise_filename
from backend.documents.intelligence.extract import DocumentText, OcrMode, PageReader, docx_text
from backend.documents.intelligence.fields import ExtractedFields
from backend.documents.intelligence.pages import UnreadableDocument
from backend.documents.intelligence.render import render_page_png
from backend.documents.intelligence.search_dsl import compile_filter
from backend.documents.models import Document, DocumentPage, DocumentStatus
from backend.documents.purge import kept_by_purge
from backend.documents.repository import DocumentPageRepository, DocumentRepository
from backend.documents.schemas import (
    MAX_EXTRACTED_DATA_BYTES,
    MAX_METADATA_BYTES,
    DocumentMetadata,
    DocumentUpdate,
    SearchRequest,
)
from backend.jobs.service import job_service
from backend.kit.archive import UnsafeArchive, archive_limits, check_archive
from backend.kit.db import current_tenant_id
from backend.kit.errors import (
    DossierError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationFailed,
)
from backend.kit.events import emit
from backend.kit.http import Blob, check_if_match
from backend.kit.listing import HotList
from backend.kit.models import uuid7
from backend.kit.pagination import ListQuery, PageResult, make_list_query
from backend.kit.references import is_live
from backend.kit.sandbox import SandboxError, parser_limits, run_sandboxed
from backend.kit.security.signing import sign_link, verify_link
from backend.kit.storage import (
    StagedObject,
    Storage,
    commit_after_commit,
    get_storage,
    key_for,
)
from backend.kit.storage import discard_now as discard_staged
from backend.settings import Settings
from backend.tenants.service import tenant_service
from backend.tenants.storage_quota import check_storage_quota, lock_tenant_storage

TEXT_EXTRACTION = "document.extract_text"
# MIME type -> the job queued for a new document of that type, for types
# that a plugin processes otherwise than by text extraction.
_processing_jobs: dict[str, str] = {}


def register_processing_job(mime_types: Iterable[str], job_type: str) -> None:
    for mime_type in mime_types:
        _processing_jobs[mime_type] = job_type


class DuplicateDocument(DossierError):
    status, code = 409, "duplicate_document"


class NotProcessed(DossierError):
    status, code = 409, "not_processed"


T = TypeVar("T")
RunBlocking = Callable[..., Awaitable[Any]]
DEFAULT_OCR_LANGUAGES = ["eng", "deu"]
PREVIEW_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/tiff")
SEARCH_SORTABLE = ["created_at", "updated_at", "title", "size"]


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """A processed document's text as other domains and workloads read it
    (`DocumentService.read_text` / `ensure_text`): the whole text, each
    page's text, the language and the OCR confidence."""

    document_id: UUID
    text: str
    pages: list[str]
    language: str | None
    confidence: float | None
    page_count: int | None


@dataclass(frozen=True, slots=True)
class TenantReading:
    """A tenant's settings for reading documents."""

    ocr_languages: list[str]
    auto_extract_fields: bool


class _RenderCache:
    """Rendered page previews by ETag, least recently used first out, within
    a byte budget (per process: a repeated preview skips the render)."""

    def __init__(self, budget: int = 64 * 1024 * 1024) -> None:
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.budget // 8 or key in self.items:
            return
        self.items[key] = value
        self.used += len(value)
        while self.used > self.budget:
            _, dropped = self.items.popitem(last=False)
            self.used -= len(dropped)


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(slots=True)
class StagedFile:
    """An uploaded file in storage but not yet visible, with what was learnt
    while it streamed."""

    document_id: UUID
    staged: StagedObject
    storage: Storage
    filename: str
    mime_type: str
    size: int
    sha256: str


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
    )


def document_key(tenant_id: UUID, document_id: UUID) -> str:
    return key_for("tenants", tenant_id, "documents", document_id)


def document_blob(document: Document) -> Blob:
    return Blob(
        storage_key=document.storage_key,
        size=document.size,
        sha256=document.sha256,
        content_type=document.mime_type,
        filename=document.filename,
    )


def document_event(document: Document) -> dict[str, Any]:
    return {
        "id": str(document.id),
        "title": document.title,
        "filename": document.filename,
        "mime_type": document.mime_type,
        "size": document.size,
        "status": document.status,
        "case_id": str(document.case_id) if document.case_id else None,
    }


DOCUMENT_DELETION = SoftDeletion(
    DocumentRepository, "document", "document.deleted", "document.restored"
)


class DocumentService:
    # ------------------------------------------------------------------ upload
    async def stage_file(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        source: AsyncIterable[bytes],
        filename: str | None,
        claimed_type: str | None,
        declared_size: int | None = None,
    ) -> StagedFile:
        """Stream `source` into a staged blob while hashing, measuring and
        type-checking it; refuse early when the declared size already breaks
        the size limit or the quota."""
        tenant_id = _tenant()
        if declared_size is not None and declared_size > settings.max_upload_bytes:
            raise PayloadTooLarge(f"The file is larger than {settings.max_upload_bytes} bytes")
        if declared_size is not None:
            await check_storage_quota(session, settings, tenant_id, declared_size)
        document_id = uuid7()
        storage = get_storage(settings)
        inspected = InspectedStream(
            source,
            max_bytes=settings.max_upload_bytes,
            allowed_types=settings.upload_allowed_types,
            claimed_type=claimed_type,
        )
        staged = await storage.put_stream(
            document_key(tenant_id, document_id), inspected, content_type=None
        )
        assert inspected.mime_type is not None
        staged.content_type = inspected.mime_type
        return StagedFile(
            document_id=document_id,
            staged=staged,
            storage=storage,
            filename=sanitise_filename(filename),
            mime_type=inspected.mime_type,
            size=inspected.size,
            sha256=staged.sha256,
        )

    async def stage_stored(
        self,
        settings: Settings,
        *,
        storage: Storage,
        key: str,
        filename: str | None,
        claimed_type: str | None,
    ) -> StagedFile:
        """A file a client sent straight to storage (assembled under `key`),
        streamed back — never loaded whole — to hash, measure and type-check
        it as an upload; the document then keeps that object. Refused (or on
        any error) the object is deleted."""
        inspected = InspectedStream(
            storage.open_range(key),
            max_bytes=settings.max_upload_bytes,
            allowed_types=settings.upload_allowed_types,
            claimed_type=claimed_type,
        )
        digest = hashlib.sha256()
        try:
            async for chunk in inspected:
                await asyncio.to_thread(digest.update, chunk)
        except BaseException:
            await storage.delete(key)
            raise
        assert inspected.mime_type is not None
        staged = StagedObject(
            key=key,
            size=inspected.size,
            content_type=inspected.mime_type,
            sha256=digest.hexdigest(),
            stored=True,
        )
        return StagedFile(
            document_id=uuid7(),
            staged=staged,
            storage=storage,
            filename=sanitise_filename(filename),
            mime_type=inspected.mime_type,
            size=inspected.size,
            sha256=staged.sha256,
        )

    async def discard(self, session: AsyncSession, file: StagedFile) -> None:
        await discard_staged(session, file.storage, file.staged)

    async def create_document(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        file: StagedFile,
        metadata: DocumentMetadata,
        *,
        allow_duplicate: bool = False,
    ) -> Document:
        """The row for a staged file; the staged blob is discarded if any rule refuses it."""
        try:
            return await self._create(session, settings, actor, file, metadata, allow_duplicate)
        except BaseException:
            await self.discard(session, file)
            raise

    async def _create(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        file: StagedFile,
        metadata: DocumentMetadata,
        allow_duplicate: bool,
    ) -> Document:
        tenant_id = _tenant()
        repository = DocumentRepository(session)
        if metadata.case_id is not None:
            await _ensure_live_case(session, metadata.case_id, "case_id")
        await lock_tenant_storage(session, tenant_id)
        existing = await repository.live_with_sha256(file.sha256)
        if existing is not None and not allow_duplicate:
            raise DuplicateDocument(
                "A document with the same content already exists", existing_id=str(existing.id)
            )
        await check_storage_quota(session, settings, tenant_id, file.size)
        document = Document(
            id=file.document_id,
            tenant_id=tenant_id,
            title=metadata.title or file.filename,
            description=metadata.description,
            filename=file.filename,
            mime_type=file.mime_type,
            size=file.size,
            sha256=file.sha256,
            is_duplicate=existing is not None,
            storage_key=file.staged.key,
            tags=metadata.tags,
            case_id=metadata.case_id,
            metadata_=metadata.metadata,
            created_by=actor.id,
        )
        try:
            async with session.begin_nested():
                await repository.add(document)
        except IntegrityError:
            # A concurrent upload of the same content committed first.
            existing = await repository.live_with_sha256(file.sha256)
            raise DuplicateDocument(
                "A document with the same content already exists",
                existing_id=str(existing.id) if existing else None,
            ) from None
        commit_after_commit(session, file.storage, file.staged)
        await audit_service.record(
            session,
            actor,
            "document.created",
            "document",
            document.id,
            {
                "filename": document.filename,
                "size": document.size,
                "sha256": document.sha256,
                "mime_type": document.mime_type,
                "case_id": str(document.case_id) if document.case_id else None,
            },
        )
        emit(session, "document.created", document_event(document))
        await self._after_document_created(session, settings, actor, document)
        return document

    async def _after_document_created(
        self, session: AsyncSession, settings: Settings, actor: Actor, document: Document
    ) -> None:
        """Runs in the creating transaction after every new document, whether
        uploaded directly, in bulk or through a resumable upload: queues the
        job that processes its type (text extraction unless a plugin chose
        another job for the type, or the tenant turned extraction off)."""
        job_type = _processing_jobs.get(document.mime_type, TEXT_EXTRACTION)
        if job_type == TEXT_EXTRACTION:
            tenant = await tenant_service.get_tenant(session, document.tenant_id)
            if tenant.settings.get("auto_extract_text", True) is False:
                return
        await job_service.enqueue(
            session,
            job_type,
            {},
            document_id=document.id,
            max_attempts=settings.job_default_max_attempts,
            created_by=actor.id,
        )

    async def source(self, session: AsyncSession, document_id: UUID) -> Document:
        """A live document, for a job that reads its file (404 if gone)."""
        return await DocumentRepository(session).get_or_raise(document_id)

    async def record_processing(
        self,
        session: AsyncSession,
        document_id: UUID,
        status: DocumentStatus,
        metadata: dict[str, Any] | None = None,
    ) -> Document | None:
        """A processing job's outcome: the document's status, and what it
        learnt merged into `metadata` (key by key); emits `document.updated`
        (and `document.processed`). None when the document is gone."""
        document = await DocumentRepository(session).get(document_id)
        if document is None:
            return None
        values: dict[str, Any] = {"status": status}
        if metadata:
            values["metadata_"] = {**document.metadata_, **metadata}
        applied = await DocumentRepository(session).update(document, values)
        changes = sorted("metadata" if name == "metadata_" else name for name in applied)
        if changes:
            emit(session, "document.updated", {**document_event(document), "changes": changes})
        if status == DocumentStatus.PROCESSED:
            emit(session, "document.processed", document_event(document))
        return document

    # -------------------------------------------------------------------- read
    async def get(
        self, session: AsyncSession, document_id: UUID, *, include_deleted: bool = False
    ) -> Document:
        return await DocumentRepository(session).get_or_raise(
            document_id, include_deleted=include_deleted
        )

    async def list_documents(
        self,
        connection: AsyncConnection,
        query: ListQuery,
        *,
        rank: bool = False,
        include_deleted: bool = False,
        tag: str | None = None,
        supplier: str | None = None,
        metadata: dict[str, str] | None = None,
        **filters: Any,
    ) -> PageResult[Any]:
        """A page of `LISTED` columns as mappings. A hot read: plain rows, the
        statement built once per shape (`HotList`). `rank`: offset pages
        searching `q` are ordered by relevance (a statement of their own)."""
        values = {**filters, "tenant_id": _tenant(), "metadata": metadata or None}
        if tag is not None:
            values["tags"] = [tag]
        if supplier is not None:
            escaped = supplier.lower().replace("\\", "\\\\").replace("%", "\\%")
            values["supplier_pattern"] = "%" + escaped.replace("_", "\\_") + "%"
            values["supplier_vat_id"] = "".join(supplier.split()).upper()
        q = values.get("q")
        if rank and q is not None and not query.keyset:
            stmt = DocumentRepository.listed_rows(include_deleted=include_deleted, **values)
            return await DocumentRepository.page_ranked(connection, stmt, q, query)
        return await _DOCUMENT_LIST.page(connection, query, values, include_deleted)

    async def search(
        self, session: AsyncSession, body: SearchRequest, *, include_deleted: bool = False
    ) -> PageResult[Any]:
        """`POST /documents/search`: the JSON filter compiled into the list
        statement (one parameterised statement), with `q` and the list contract."""
        query = make_list_query(
            SEARCH_SORTABLE,
            body.sort or "-created_at",
            page=body.page,
            page_size=body.page_size,
            limit=body.limit,
            cursor=body.cursor,
        )
        repository = DocumentRepository(session)
        stmt = repository.listed_rows(_tenant(), include_deleted=include_deleted, q=body.q).where(
            compile_filter(body.filter)
        )
        if body.q and body.sort is None and not query.keyset:
            return await repository.page_ranked(await session.connection(), stmt, body.q, query)
        return await repository.paginate_rows(stmt, query)

    # ------------------------------------------------------------------ change
    async def update(
        self,
        session: AsyncSession,
        actor: Actor,
        document_id: UUID,
        changes: DocumentUpdate,
        *,
        if_match: str | None,
    ) -> Document:
        repository = DocumentRepository(session)
        document = await repository.get_or_raise(document_id)
        check_if_match(if_match, document.version)
        values = changes.model_dump(exclude_unset=True)
        for field in ("title", "tags", "metadata"):
            if field in values and values[field] is None:
                raise _field_error(field, f"{field} cannot be null")
        if values.get("case_id") is not None:
            await _ensure_live_case(session, values["case_id"], "case_id")
        if "metadata" in values:
            check_metadata(values["metadata"])
            values["metadata_"] = values.pop("metadata")
        if "extracted_data" in values:
            if values["extracted_data"] is not None and (
                json_size(values["extracted_data"]) > MAX_EXTRACTED_DATA_BYTES
            ):
                raise PayloadTooLarge(
                    f"extracted_data is larger than {MAX_EXTRACTED_DATA_BYTES} bytes"
                )
            # A person's correction: kept, and never overwritten by a re-run.
            values["extraction"] = {
                "confidence": dict((document.extraction or {}).get("confidence") or {}),
                "corrected": True,
            }
        applied = await repository.update(document, values)
        if "metadata_" in applied:
            applied["metadata"] = applied.pop("metadata_")
        if applied:
            await audit_service.record(
                session, actor, "document.updated", "document", document.id, applied
            )
            emit(
                session,
                "document.updated",
                {**document_event(document), "changes": sorted(applied)},
            )
        return document

    async def move_to_case(
        self, session: AsyncSession, actor: Actor, document_id: UUID, case_id: UUID | None
    ) -> Document:
        """Attach (`case_id`) or detach (None) a live document; audited as an update."""
        repository = DocumentRepository(session)
        document = await repository.get_or_raise(document_id)
        applied = await repository.update(document, {"case_id": case_id})
        if applied:
            await audit_service.record(
                session, actor, "document.updated", "document", document.id, applied
            )
            emit(
                session,
                "document.updated",
                {**document_event(document), "changes": ["case_id"]},
            )
        return document

    async def delete(self, session: AsyncSession, actor: Actor, document_id: UUID) -> None:
        document = await DOCUMENT_DELETION.delete(session, actor, document_id)
        emit(session, "document.deleted", document_event(document))

    async def restore(self, session: AsyncSession, actor: Actor, document_id: UUID) -> Document:
        async def no_live_copy(document: Document) -> None:
            """Only a copy kept on purpose (`is_duplicate`) comes back beside
            a live document with the same content."""
            if not document.is_duplicate:
                existing = await DocumentRepository(session).live_with_sha256(document.sha256)
                if existing is not None:
                    raise DuplicateDocument(
                        "A live document with the same content exists",
                        existing_id=str(existing.id),
                    )

        document, restored = await DOCUMENT_DELETION.restore(
            session, actor, document_id, check=no_live_copy
        )
        if restored:
            emit(
                session, "document.updated", {**document_event(document), "changes": ["deleted_at"]}
            )
        return document

    async def announce_change(
        self, session: AsyncSession, document_id: UUID, changes: list[str]
    ) -> None:
        """`document.updated` in its one shape: the document's fields and the
        names of those that changed (for changes made outside `update`)."""
        document = await DocumentRepository(session).get(document_id)
        if document is not None:
            data = {**document_event(document), "changes": sorted(changes)}
            emit(session, "document.updated", data)

    async def is_live(self, session: AsyncSession, document_id: UUID) -> bool:
        return await DocumentRepository(session).get(document_id) is not None

    def storage_usage(self, tenant_id: Any) -> Any:
        """Bytes the tenant whose id is the expression `tenant_id` holds in
        documents, as a scalar subquery."""
        return DocumentRepository.storage_bytes_of(tenant_id)

    def live_clause(self, document_id: Any) -> Any:
        """SQL true when the document whose id is the expression `document_id`
        is live: how things derived from a document (segmentations) are hidden
        while it is soft-deleted, and served again once it is restored."""
        return DocumentRepository.live_clause(document_id)

    def kept_by_purge(self, document_id: Any, cutoff: datetime, tenant_ids: list[UUID]) -> Any:
        """SQL true when the document whose id is the expression `document_id`
        survives the admin purge with this `cutoff` and these doomed tenants
        (false once it is gone): dependants' purgers delete by it."""
        return kept_by_purge(document_id, cutoff, tenant_ids)

    async def ids_in_case(self, session: AsyncSession, case_id: UUID) -> list[UUID]:
        return await DocumentRepository(session).in_case(case_id)

    # ------------------------------------------------------------ intelligence
    async def tenant_reading(self, session: AsyncSession) -> TenantReading:
        """The tenant's `ocr_languages` (default eng + deu) and
        `auto_extract_fields` (default on) settings."""
        tenant = await tenant_service.get_tenant(session, _tenant())
        values = tenant.settings or {}
        languages = values.get("ocr_languages")
        if not (
            isinstance(languages, list)
            and languages
            and all(isinstance(item, str) for item in languages)
        ):
            languages = list(DEFAULT_OCR_LANGUAGES)
        return TenantReading(
            ocr_languages=languages,
            auto_extract_fields=values.get("auto_extract_fields", True) is not False,
        )

    async def _processed(self, session: AsyncSession, document_id: UUID) -> Document:
        document = await DocumentRepository(session).get_or_raise(document_id)
        if document.status != DocumentStatus.PROCESSED:
            raise NotProcessed("The document's text extraction has not succeeded yet")
        return document

    async def read_text(self, session: AsyncSession, document_id: UUID) -> ExtractedText:
        """A processed document's text and its pages' texts (409
        `not_processed` before extraction succeeded). For domains and
        workloads that read documents (marking, CV ingestion)."""
        document = await self._processed(session, document_id)
        pages = await DocumentPageRepository(session).texts(_tenant(), document_id)
        text = await DocumentRepository(session).text_of(document_id) or ""
        return ExtractedText(
            document_id=document.id,
            text=text,
            pages=pages or ([text] if text else []),
            language=document.language,
            confidence=document.confidence,
            page_count=document.page_count,
        )

    async def text_of(self, session: AsyncSession, document_id: UUID, page: int | None) -> str:
        """The whole text (pages separated by a form feed) or one page's."""
        extracted = await self.read_text(session, document_id)
        if page is None:
            return extracted.text
        if not 1 <= page <= len(extracted.pages):
            raise NotFound(f"The document has {len(extracted.pages)} page(s)")
        return extracted.pages[page - 1]

    async def list_pages(self, session: AsyncSession, document_id: UUID) -> list[DocumentPage]:
        await self._processed(session, document_id)
        return await DocumentPageRepository(session).pages_of(_tenant(), document_id)

    async def get_page(self, session: AsyncSession, document_id: UUID, number: int) -> DocumentPage:
        await self._processed(session, document_id)
        page = await DocumentPageRepository(session).page(_tenant(), document_id, number)
        if page is None:
            raise NotFound("No such page")
        return page

    def page_image_etag(self, document: Document, number: int, width: int) -> str:
        return f'"{document.sha256[:40]}-p{number}-w{width}"'

    async def page_image(
        self, session: AsyncSession, settings: Settings, document_id: UUID, number: int, width: int
    ) -> tuple[bytes, str]:
        """A PNG of one page of a PDF or image document, `width` pixels wide,
        and its strong ETag; rendered in a worker thread, cached per process.
        415 for other types, 404 past the last page."""
        document = await DocumentRepository(session).get_or_raise(document_id)
        if document.mime_type not in PREVIEW_TYPES:
            raise UnsupportedMediaType("Only PDF and image documents have page images")
        etag = self.page_image_etag(document, number, width)
        cached = _render_cache.get(etag)
        if cached is not None:
            return cached, etag
        storage = get_storage(settings)
        with tempfile.TemporaryDirectory(prefix="dossier-render-") as folder:
            path = Path(folder) / "content"
            await _download(storage, document.storage_key, path)
            image = await anyio.to_thread.run_sync(
                render_page_png, path, document.mime_type, number, width
            )
        if image is None:
            raise NotFound("No such page")
        _render_cache.put(etag, image)
        return image, etag

    async def store_extraction(
        self, session: AsyncSession, document_id: UUID, result: DocumentText
    ) -> Document | None:
        """Write an extraction: text, pages, language, confidence, status
        `processed`; events after commit. None when the document is gone."""
        repository = DocumentRepository(session)
        document = await repository.get(document_id)
        if document is None:
            return None
        await DocumentPageRepository(session).replace(
            _tenant(), document_id, [page.as_row() for page in result.pages]
        )
        await repository.write_extraction(
            document,
            {
                "extracted_text": result.text,
                "page_count": result.page_count,
                "language": result.language,
                "confidence": result.confidence,
                "status": DocumentStatus.PROCESSED,
            },
        )
        data = {
            "document_id": str(document.id),
            "status": "processed",
            "page_count": result.page_count,
            "language": result.language,
            "ocr_pages": result.ocr_pages,
        }
        emit(session, "document.processed", data)
        await self.announce_change(
            session, document_id, ["confidence", "language", "page_count", "status"]
        )
        return document

    async def set_status(
        self, session: AsyncSession, document_id: UUID, status: DocumentStatus
    ) -> None:
        repository = DocumentRepository(session)
        document = await repository.get(document_id)
        if document is not None and document.status != status:
            document.status = status
            await session.flush()
            await self.announce_change(session, document_id, ["status"])

    async def ensure_text(
        self,
        session: AsyncSession,
        settings: Settings,
        document_id: UUID,
        *,
        run_blocking: RunBlocking | None = None,
        ocr: OcrMode = "auto",
    ) -> ExtractedText:
        """A document's text, extracting it now (and storing the result) if
        it was not processed yet: for job handlers of other workloads that
        need the text of a freshly uploaded document. `run_blocking` is the
        job context's (`ctx.run_blocking`); without it a thread is used."""
        document = await DocumentRepository(session).get_or_raise(document_id)
        if document.status != DocumentStatus.PROCESSED:
            reading = await self.tenant_reading(session)
            result = await self.extract_file(
                settings,
                document.storage_key,
                document.mime_type,
                ocr=ocr,
                languages=reading.ocr_languages,
                min_page_chars=settings.ocr_min_page_chars,
                run_blocking=run_blocking,
            )
            await self.store_extraction(session, document_id, result)
        return await self.read_text(session, document_id)

    async def extract_file(
        self,
        settings: Settings,
        storage_key: str,
        mime_type: str,
        *,
        ocr: OcrMode,
        languages: list[str],
        min_page_chars: int,
        run_blocking: RunBlocking | None = None,
        on_page: Callable[[int, int, str], Awaitable[None]] | None = None,
    ) -> DocumentText:
        """Download a stored file and read it page by page off the event loop
        (`on_page(done, total, method)` after each page: progress, cancel)."""
        blocking: RunBlocking = run_blocking or _to_thread
        with tempfile.TemporaryDirectory(prefix="dossier-extract-") as folder:
            path = Path(folder) / "content"
            await _download(get_storage(settings), storage_key, path)
            reader = PageReader(
                path, mime_type, ocr=ocr, languages=languages, min_page_chars=min_page_chars
            )
            if reader.kind == "docx":
                reader.use_docx_text(*await _read_docx(settings, path))
            count = await blocking(reader.count)
            pages = []
            for index in range(count):
                page = await blocking(reader.page, index)
                pages.append(page)
                if on_page is not None:
                    await on_page(index + 1, count, page.method)
            return reader.finish(pages)

    async def store_fields(
        self, session: AsyncSession, document_id: UUID, extracted: ExtractedFields
    ) -> tuple[Document | None, bool]:
        """Write classification and fields, unless a person corrected them
        (then they stay; answers False)."""
        repository = DocumentRepository(session)
        document = await repository.get(document_id)
        if document is None:
            return None, False
        if (document.extraction or {}).get("corrected"):
            return document, False
        confidence = {"document_type": extracted.type_confidence, **extracted.confidence}
        applied = await repository.update(
            document,
            {
                "document_type": extracted.document_type,
                "extracted_data": extracted.data,
                "extraction": {"confidence": confidence, "corrected": False},
            },
        )
        if applied:
            emit(
                session,
                "document.updated",
                {**document_event(document), "changes": sorted(applied)},
            )
        return document, True

    # --------------------------------------------------------- signed download
    def sign_download(
        self, settings: Settings, document: Document, now: float | None = None
    ) -> tuple[dict[str, str], datetime]:
        return sign_link(settings, str(document.id), document.tenant_id, now)

    def verify_download(
        self, settings: Settings, document_id: UUID, tenant: str, expires: str, sig: str
    ) -> UUID:
        """The tenant a valid signed link is for; 403 when tampered or expired."""
        return verify_link(settings, str(document_id), tenant, expires, sig)


async def _download(storage: Storage, key: str, path: Path) -> None:
    async with await anyio.open_file(path, "wb") as handle:
        async for chunk in storage.open_range(key):
            await handle.write(chunk)


async def _to_thread(function: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(function, *args)


def _document_list(binds: Mapping[str, Any], include_deleted: Hashable) -> Select[Any]:
    """A document list's statement for one shape (filters given, deleted
    rows included or not)."""
    return DocumentRepository.listed_rows(include_deleted=bool(include_deleted), **binds)


_DOCUMENT_LIST = HotList(Document, _document_list)


def _tenant() -> UUID:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise RuntimeError("documents belong to a tenant")
    return tenant_id


async def _ensure_live_case(session: AsyncSession, case_id: UUID, field: str) -> None:
    if not await is_live(session, "case", case_id):
        raise _field_error(field, "No such case in this tenant")


def check_metadata(value: dict[str, Any]) -> None:
    """413 above 16 KiB of JSON."""
    if json_size(value) > MAX_METADATA_BYTES:
        raise PayloadTooLarge(f"metadata is larger than {MAX_METADATA_BYTES} bytes of JSON")


def deny_include_deleted(permissions: frozenset[str], permission: str) -> None:
    if permission not in permissions:
        raise PermissionDenied(f"include_deleted needs {permission}")


document_service = DocumentService()
_render_cache = _RenderCache()


async def _read_docx(settings: Settings, path: Path) -> tuple[str, int | None]:
    """A DOCX is a ZIP: its directory is checked (members, sizes, ratio)
    before python-docx sees it, and python-docx runs in a limited child
    process, so a bomb or a parser blow-up fails the document, not the worker."""
    try:
        await asyncio.to_thread(check_archive, path, archive_limits(settings))
        return await run_sandboxed(docx_text, path, limits=parser_limits(settings))
    except (UnsafeArchive, SandboxError) as error:
        raise UnreadableDocument(f"The DOCX cannot be read safely: {error}") from None
